package schema

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/tistream/tistream/libs/formats/container"
)

// The persisted history is a container file of kind TSSH whose records are
// hand-written binary (docs/formats/schema-history.md): a header record,
// then every database version, every table version, every schema version
// point and every change, each record tagged by its first byte. Integers
// are varints (ids zig-zag, as Go's binary.AppendVarint), byte strings a
// uvarint length and the bytes; a dropped version has an empty info.
const (
	recHeader  = 'H'
	recDB      = 'D'
	recTable   = 'T'
	recVersion = 'V'
	recChange  = 'C'

	// HistoryFormatVersion is the version of the record layout. Version 2
	// added the change's old names, DDL job and settled flag; a reader
	// reads 1 and 2 and refuses others.
	HistoryFormatVersion = 2
)

// Encode writes the whole history as one TSSH container file. Call it
// between transactions (after ApplyBatch or SetResolved); it closes the
// transaction applied last.
func (h *History) Encode() ([]byte, error) {
	h.closeTail()
	dbIDs := slices.Sorted(maps.Keys(h.dbs))
	tableIDs := slices.Sorted(maps.Keys(h.tables))
	var nDB, nTable uint64
	for _, id := range dbIDs {
		nDB += uint64(len(h.dbs[id]))
	}
	for _, id := range tableIDs {
		nTable += uint64(len(h.tables[id]))
	}
	w := container.NewWriter(container.KindSchemaHistory, container.Options{Codec: container.CodecZstd})
	b := []byte{recHeader}
	for _, v := range []uint64{HistoryFormatVersion, h.Tenant, h.base, h.floor, h.last, h.resolved,
		nDB, nTable, uint64(len(h.versions)), uint64(len(h.changes))} {
		b = binary.AppendUvarint(b, v)
	}
	if err := w.Append(b); err != nil {
		return nil, err
	}
	for _, id := range dbIDs {
		for _, d := range h.dbs[id] {
			b = append(b[:0], recDB)
			b = binary.AppendVarint(b, id)
			b = binary.AppendUvarint(b, d.Ts)
			b = appendBytes(b, d.Raw)
			if err := w.Append(b); err != nil {
				return nil, fmt.Errorf("db %d at %d: %w", id, d.Ts, err)
			}
		}
	}
	for _, id := range tableIDs {
		for _, t := range h.tables[id] {
			b = append(b[:0], recTable)
			b = binary.AppendVarint(b, id)
			b = binary.AppendVarint(b, t.DBID)
			b = binary.AppendUvarint(b, t.Ts)
			b = appendBytes(b, t.Raw)
			if err := w.Append(b); err != nil {
				return nil, fmt.Errorf("table %d at %d: %w", id, t.Ts, err)
			}
		}
	}
	for _, p := range h.versions {
		b = append(b[:0], recVersion)
		b = binary.AppendUvarint(b, p.ts)
		b = binary.AppendVarint(b, p.version)
		if err := w.Append(b); err != nil {
			return nil, err
		}
	}
	for _, c := range h.changes {
		b = append(b[:0], recChange)
		b = binary.AppendUvarint(b, c.CommitTs)
		b = binary.AppendVarint(b, c.SchemaVersion)
		b = append(b, byte(c.Kind))
		b = binary.AppendVarint(b, c.DBID)
		b = binary.AppendVarint(b, c.TableID)
		b = appendBytes(b, []byte(c.DBName))
		b = appendBytes(b, []byte(c.TableName))
		b = appendBytes(b, c.Info)
		b = appendChangeV2(b, &c)
		if err := w.Append(b); err != nil {
			return nil, fmt.Errorf("change at %d: %w", c.CommitTs, err)
		}
	}
	return w.Finish()
}

// appendChangeV2 appends what format version 2 added to a change record.
func appendChangeV2(b []byte, c *Change) []byte {
	b = append(b, boolByte(c.settled))
	b = binary.AppendVarint(b, c.OldDBID)
	b = appendBytes(b, []byte(c.OldDBName))
	b = appendBytes(b, []byte(c.OldTableName))
	if c.Job == nil {
		return append(b, 0)
	}
	j := c.Job
	b = append(b, 1)
	b = binary.AppendVarint(b, j.ID)
	b = append(b, byte(j.Type))
	b = binary.AppendVarint(b, int64(j.State))
	b = binary.AppendVarint(b, j.SchemaID)
	b = binary.AppendVarint(b, j.TableID)
	b = appendBytes(b, []byte(j.SchemaName))
	b = appendBytes(b, []byte(j.TableName))
	b = appendBytes(b, []byte(j.Query))
	return binary.AppendUvarint(b, j.CommitTs)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// fields reads the fields of one record; the first problem sticks.
type fields struct {
	b   []byte
	err string
}

func (f *fields) fail(what, why string) {
	if f.err == "" {
		f.err = what + ": " + why
	}
	f.b = nil
}

func (f *fields) uvarint(what string) uint64 {
	v, n := binary.Uvarint(f.b)
	if n <= 0 {
		f.fail(what, "truncated or overlong varint")
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *fields) varint(what string) int64 {
	v, n := binary.Varint(f.b)
	if n <= 0 {
		f.fail(what, "truncated or overlong varint")
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *fields) byte(what string) byte {
	if len(f.b) == 0 {
		f.fail(what, "missing")
		return 0
	}
	v := f.b[0]
	f.b = f.b[1:]
	return v
}

func (f *fields) bytes(what string) []byte {
	n := f.uvarint(what + " length")
	if n > uint64(len(f.b)) {
		f.fail(what, fmt.Sprintf("length %d runs past the record (%d bytes left)", n, len(f.b)))
		return nil
	}
	v := f.b[:n:n]
	f.b = f.b[n:]
	return v
}

// done reports the first problem, or bytes left after the last field.
func (f *fields) done() string {
	if f.err == "" && len(f.b) > 0 {
		return fmt.Sprintf("%d bytes after the last field", len(f.b))
	}
	return f.err
}
