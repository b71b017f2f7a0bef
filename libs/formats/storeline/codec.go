package storeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one line; producers keep rows lines well below it
// (a few hundred rows each).
const MaxLineBytes = 64 << 20

// Encoder writes lines. It buffers: call Flush.
type Encoder struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewEncoder writes to w.
func NewEncoder(w io.Writer) *Encoder {
	bw := bufio.NewWriterSize(w, 1<<20)
	return &Encoder{w: bw, enc: json.NewEncoder(bw)}
}

// Encode writes one line.
func (e *Encoder) Encode(l *Line) error { return e.enc.Encode(l) }

// Flush writes out what is buffered.
func (e *Encoder) Flush() error { return e.w.Flush() }

// Decoder reads lines, checking each on its own (Check); the rules that
// need the whole stream (a store leads the regions it writes) are the
// writer's.
type Decoder struct {
	r    *bufio.Reader
	line int
}

// NewDecoder reads from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 1<<20)} }

// Next returns the next line, io.EOF at the end, or an error naming the
// line number.
func (d *Decoder) Next() (*Line, error) {
	for {
		raw, err := d.readLine()
		if err != nil {
			return nil, err
		}
		d.line++
		if len(raw) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("store lines:%d: %w", d.line, err)
		}
		if err := Check(&l); err != nil {
			return nil, fmt.Errorf("store lines:%d: %w", d.line, err)
		}
		return &l, nil
	}
}

func (d *Decoder) readLine() ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := d.r.ReadLine()
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return nil, fmt.Errorf("store lines:%d: %w", d.line+1, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > MaxLineBytes {
			return nil, fmt.Errorf("store lines:%d: line longer than %d bytes", d.line+1, MaxLineBytes)
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

// Check checks one line's fields.
func Check(l *Line) error {
	switch l.T {
	case TypeHello:
		if l.Cluster == 0 || l.Tenant == 0 {
			return errors.New("hello: cluster and tenant must be non-zero")
		}
	case TypeSchema:
		if l.Schema == nil {
			return errors.New("schema: no schema")
		}
		for i, o := range l.Schema.Objects {
			if o.Kind != "db" && o.Kind != "table" {
				return fmt.Errorf("schema: object %d: kind %q", i, o.Kind)
			}
			if !json.Valid([]byte(o.Info)) {
				return fmt.Errorf("schema: object %d: info is not JSON", i)
			}
		}
	case TypeStart:
		if l.Store == 0 || l.Region == nil || l.Region.ID == 0 || l.Term == 0 {
			return errors.New("start: store, region (non-zero id) and term are required")
		}
		if l.Reason == "" {
			return errors.New("start: no reason")
		}
		if l.Reason != ReasonBootstrap && len(l.Preds) == 0 {
			return fmt.Errorf("start: reason %s without predecessors", l.Reason)
		}
	case TypeEnd:
		if l.Store == 0 || l.RegionID == 0 {
			return errors.New("end: store and region_id are required")
		}
	case TypeRows:
		if l.Store == 0 || l.RegionID == 0 || len(l.Rows) == 0 {
			return errors.New("rows: store, region_id and rows are required")
		}
		for i := range l.Rows {
			if err := checkRow(&l.Rows[i]); err != nil {
				return fmt.Errorf("rows: row %d: %w", i, err)
			}
		}
	case TypeResolved:
		if l.Store == 0 || len(l.Regions) == 0 {
			return errors.New("resolved: store and regions are required")
		}
	case TypeCut:
		if l.Store == 0 || l.MaxTs == 0 {
			return errors.New("cut: store and max_ts are required")
		}
	default:
		return fmt.Errorf("unknown line type %q", l.T)
	}
	return nil
}

func checkRow(r *Row) error {
	if len(r.Key) == 0 || r.StartTs == 0 {
		return errors.New("key and start_ts are required")
	}
	switch r.Type {
	case RowPrewrite, RowCommit, RowCommitted:
		if r.Op != OpPut && r.Op != OpDelete {
			return fmt.Errorf("%s: op %q", r.Type, r.Op)
		}
		if r.Type != RowPrewrite && r.CommitTs <= r.StartTs {
			return fmt.Errorf("%s: commit_ts %d <= start_ts %d", r.Type, r.CommitTs, r.StartTs)
		}
	case RowRollback:
	default:
		return fmt.Errorf("type %q", r.Type)
	}
	return nil
}
