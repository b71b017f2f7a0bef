package truth

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// flushAt is how much the Writer buffers before writing: large enough that
// a file write costs little per line, small enough to stay in cache.
const flushAt = 64 << 10

// Writer encodes lines into an internal buffer and writes it out in large
// chunks. It encodes by hand (no reflection, no allocation per line) because
// the simulator writes hundreds of thousands of lines per second. A Writer
// is not safe for concurrent use. Call Flush at the end.
type Writer struct {
	w   io.Writer
	buf []byte
	err error // sticky: once a write failed, the output is incomplete
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 2*flushAt)}
}

// WriteRow writes one row line. A row the Reader would reject (unknown op,
// empty key, a delete with a value, negative ids) is refused with an error
// and nothing is written, so everything written reads back.
func (w *Writer) WriteRow(r Row) error {
	if w.err != nil {
		return w.err
	}
	if err := checkRow(&r); err != nil {
		return err
	}
	b := append(w.buf, `{"type":"row","tenant":`...)
	b = strconv.AppendUint(b, r.Tenant, 10)
	b = append(b, `,"table_id":`...)
	b = strconv.AppendInt(b, r.TableID, 10)
	b = append(b, `,"commit_ts":`...)
	b = strconv.AppendUint(b, r.CommitTs, 10)
	b = append(b, `,"start_ts":`...)
	b = strconv.AppendUint(b, r.StartTs, 10)
	b = append(b, `,"op":"`...)
	b = append(b, r.Op...)
	b = append(b, `","key":"`...)
	b = hex.AppendEncode(b, r.Key)
	b = append(b, `","value":"`...)
	b = hex.AppendEncode(b, r.Value)
	b = append(b, '"')
	if r.SchemaVersion != 0 {
		b = append(b, `,"schema_version":`...)
		b = strconv.AppendInt(b, r.SchemaVersion, 10)
	}
	w.buf = append(b, "}\n"...)
	return w.maybeFlush()
}

// WriteResolved writes {"type":"resolved","ts":N}.
func (w *Writer) WriteResolved(r Resolved) error {
	if w.err != nil {
		return w.err
	}
	b := append(w.buf, `{"type":"resolved","ts":`...)
	b = strconv.AppendUint(b, r.Ts, 10)
	w.buf = append(b, "}\n"...)
	return w.maybeFlush()
}

// WriteEnd writes the truth file's last line, {"type":"end","resolved_ts":N}.
func (w *Writer) WriteEnd(e End) error {
	if w.err != nil {
		return w.err
	}
	b := append(w.buf, `{"type":"end","resolved_ts":`...)
	b = strconv.AppendUint(b, e.ResolvedTs, 10)
	w.buf = append(b, "}\n"...)
	return w.maybeFlush()
}

// WriteDDL writes {"type":"ddl","tenant":T,"commit_ts":N,"db_id":N,
// "table_id":N,"action":"...","schema_version":N} and the optional fields
// that are set ("db", "table", "old_table_id", "job_id", "query",
// "table_info": the TableInfo JSON as a string).
func (w *Writer) WriteDDL(d DDL) error {
	if w.err != nil {
		return w.err
	}
	if d.Action == "" || d.DBID < 0 || d.TableID < 0 || d.SchemaVersion < 0 || d.OldTableID < 0 || d.JobID < 0 {
		return fmt.Errorf("truth: ddl needs an action and non-negative ids: %+v", d)
	}
	b := append(w.buf, `{"type":"ddl","tenant":`...)
	b = strconv.AppendUint(b, d.Tenant, 10)
	b = append(b, `,"commit_ts":`...)
	b = strconv.AppendUint(b, d.CommitTs, 10)
	b = append(b, `,"db_id":`...)
	b = strconv.AppendInt(b, d.DBID, 10)
	b = append(b, `,"table_id":`...)
	b = strconv.AppendInt(b, d.TableID, 10)
	b = append(b, `,"action":`...)
	b = appendString(b, d.Action)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, d.SchemaVersion, 10)
	b = appendOptString(b, `,"db":`, d.DBName)
	b = appendOptString(b, `,"table":`, d.TableName)
	b = appendOptInt(b, `,"old_table_id":`, d.OldTableID)
	b = appendOptInt(b, `,"job_id":`, d.JobID)
	b = appendOptString(b, `,"query":`, d.Query)
	b = appendOptString(b, `,"table_info":`, string(d.TableInfo))
	w.buf = append(b, "}\n"...)
	return w.maybeFlush()
}

func appendOptString(b []byte, field, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, field...), s)
}

func appendOptInt(b []byte, field string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, field...), v, 10)
}

// appendString appends s as a JSON string, escaping what JSON requires.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Flush writes out everything buffered.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("truth: write: %w", err)
	}
	return w.err
}

func (w *Writer) maybeFlush() error {
	if len(w.buf) < flushAt {
		return nil
	}
	return w.Flush()
}

func checkRow(r *Row) error {
	switch {
	case r.Op != OpPut && r.Op != OpDelete:
		return fmt.Errorf("truth: row op %q: want %q or %q", r.Op, OpPut, OpDelete)
	case len(r.Key) == 0:
		return fmt.Errorf("truth: row with an empty key")
	case r.Op == OpDelete && len(r.Value) != 0:
		return fmt.Errorf("truth: delete of key %x carries a value", r.Key)
	case r.TableID < 0:
		return fmt.Errorf("truth: negative table_id %d", r.TableID)
	case r.SchemaVersion < 0:
		return fmt.Errorf("truth: negative schema_version %d", r.SchemaVersion)
	}
	return nil
}
