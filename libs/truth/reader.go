package truth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLineBytes bounds one line, so a file without newlines (or a
// corrupt one) fails with a line error instead of exhausting memory. TiDB
// caps an entry at 120 MiB, which is 240 MiB hex encoded.
const DefaultMaxLineBytes = 256 << 20

// Reader decodes a JSON Lines stream one line at a time. Blank lines are
// skipped (but counted, so line numbers match an editor's).
type Reader struct {
	name    string
	br      *bufio.Reader
	maxLine int
	num     int64
	long    []byte // a line longer than br's buffer, reassembled
	ioErr   error  // sticky: the input cannot be read further

	sc      scanner
	line    Line
	key     []byte
	value   []byte
	scratch []byte
}

// NewReader returns a Reader of r; name (typically the file name) prefixes
// every error.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, 1<<20), maxLine: DefaultMaxLineBytes}
}

// SetMaxLineBytes changes the longest line accepted (DefaultMaxLineBytes).
func (r *Reader) SetMaxLineBytes(n int) { r.maxLine = n }

// Name is the name given to NewReader.
func (r *Reader) Name() string { return r.name }

// Next returns the next line, or io.EOF after the last one. The returned
// Line, including Row.Key and Row.Value, is reused by the next call: copy
// what must outlive it (Row.Clone). A *LineError leaves the reader usable at
// the following line; an I/O error is returned again by every later call.
func (r *Reader) Next() (*Line, error) {
	for {
		raw, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if err := r.decode(raw); err != nil {
			le := &LineError{Name: r.name, Line: r.num, Msg: err.Error()}
			var fe *fieldError
			if errors.As(err, &fe) {
				le.Field = fe.field
			}
			return nil, le
		}
		r.line.Num = r.num
		return &r.line, nil
	}
}

func (r *Reader) readLine() ([]byte, error) {
	if r.ioErr != nil {
		return nil, r.ioErr
	}
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long) > r.maxLine {
				r.ioErr = &LineError{Name: r.name, Line: r.num + 1,
					Msg: fmt.Sprintf("line longer than %d bytes", r.maxLine)}
				return nil, r.ioErr
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	switch {
	case err == nil:
		line = line[:len(line)-1] // the '\n'
	case err == io.EOF && len(line) > 0:
		// A last line without a newline still counts.
	case err == io.EOF:
		r.ioErr = io.EOF
		return nil, io.EOF
	default:
		r.ioErr = fmt.Errorf("read %s: %w", r.name, err)
		return nil, r.ioErr
	}
	if len(line) > r.maxLine {
		r.ioErr = &LineError{Name: r.name, Line: r.num + 1,
			Msg: fmt.Sprintf("line longer than %d bytes", r.maxLine)}
		return nil, r.ioErr
	}
	r.num++
	return line, nil
}

func (r *Reader) decode(raw []byte) error {
	sc := &r.sc
	if err := sc.scanObject(raw); err != nil {
		return err
	}
	if sc.slots[fType].kind == vNone {
		r.line.Kind = KindRow
		return r.decodeRow()
	}
	typ, err := sc.stringField(fType, &r.scratch)
	if err != nil {
		return err
	}
	switch string(typ) {
	case TypeRow:
		r.line.Kind = KindRow
		return r.decodeRow()
	case TypeResolved:
		r.line.Kind = KindResolved
		r.line.Resolved.Ts, err = sc.uintField(fTs)
	case TypeEnd:
		r.line.Kind = KindEnd
		r.line.End.ResolvedTs, err = sc.uintField(fResolvedTs)
	case TypeDDL:
		r.line.Kind = KindDDL
		return r.decodeDDL()
	case "":
		return badField("type", "empty")
	default:
		r.line.Kind = KindOther
		r.line.Type = string(typ)
	}
	return err
}

func (r *Reader) decodeRow() error {
	sc := &r.sc
	row := &r.line.Row
	var err error
	if row.Tenant, err = sc.uintField(fTenant); err != nil {
		return err
	}
	if row.TableID, err = sc.intField(fTableID); err != nil {
		return err
	}
	if row.CommitTs, err = sc.uintField(fCommitTs); err != nil {
		return err
	}
	if row.StartTs, err = sc.uintField(fStartTs); err != nil {
		return err
	}
	op, err := sc.stringField(fOp, &r.scratch)
	if err != nil {
		return err
	}
	switch string(op) {
	case OpPut:
		row.Op = OpPut
	case OpDelete:
		row.Op = OpDelete
	default:
		return badField("op", "unknown op %q (want %q or %q)", op, OpPut, OpDelete)
	}
	if r.key, err = sc.hexField(fKey, r.key, &r.scratch); err != nil {
		return err
	}
	if len(r.key) == 0 {
		return badField("key", "empty")
	}
	if r.value, err = sc.hexField(fValue, r.value, &r.scratch); err != nil {
		return err
	}
	if row.Op == OpDelete && len(r.value) != 0 {
		return badField("value", "a delete carries no value")
	}
	row.Key, row.Value = r.key, r.value
	row.SchemaVersion = 0
	if sc.slots[fSchemaVersion].kind != vNone {
		if row.SchemaVersion, err = sc.intField(fSchemaVersion); err != nil {
			return err
		}
	}
	return nil
}

// decodeDDL requires every field the simulator writes: a truth file is
// machine-written, and a schema-true check will depend on them.
func (r *Reader) decodeDDL() error {
	sc := &r.sc
	d := &r.line.DDL
	var err error
	if d.Tenant, err = sc.uintField(fTenant); err != nil {
		return err
	}
	if d.CommitTs, err = sc.uintField(fCommitTs); err != nil {
		return err
	}
	if d.DBID, err = sc.intField(fDBID); err != nil {
		return err
	}
	if d.TableID, err = sc.intField(fTableID); err != nil {
		return err
	}
	if d.SchemaVersion, err = sc.intField(fSchemaVersion); err != nil {
		return err
	}
	action, err := sc.stringField(fAction, &r.scratch)
	if err != nil {
		return err
	}
	if len(action) == 0 {
		return badField("action", "empty")
	}
	if d.Action != string(action) { // reuse the string while actions repeat
		d.Action = string(action)
	}
	return r.decodeDDLOptional(d)
}

// decodeDDLOptional reads the optional fields of a DDL line; absent ones
// are zero.
func (r *Reader) decodeDDLOptional(d *DDL) error {
	sc := &r.sc
	var err error
	d.DBName, d.TableName, d.Query, d.TableInfo, d.OldTableID, d.JobID = "", "", "", nil, 0, 0
	for _, f := range []struct {
		id  fieldID
		dst *string
	}{{fDB, &d.DBName}, {fTable, &d.TableName}, {fQuery, &d.Query}} {
		if sc.slots[f.id].kind == vNone {
			continue
		}
		v, err := sc.stringField(f.id, &r.scratch)
		if err != nil {
			return err
		}
		*f.dst = string(v)
	}
	if sc.slots[fTableInfo].kind != vNone {
		v, err := sc.stringField(fTableInfo, &r.scratch)
		if err != nil {
			return err
		}
		d.TableInfo = bytes.Clone(v)
	}
	if sc.slots[fOldTableID].kind != vNone {
		if d.OldTableID, err = sc.intField(fOldTableID); err != nil {
			return err
		}
	}
	if sc.slots[fJobID].kind != vNone {
		if d.JobID, err = sc.intField(fJobID); err != nil {
			return err
		}
	}
	return nil
}
