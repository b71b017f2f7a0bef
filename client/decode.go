package client

import (
	"context"
	"fmt"

	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// Column is one column of a decoded row. Value is nil for SQL NULL, else by
// the column's type:
//
//	TINYINT..BIGINT, YEAR    int64 (uint64 when UNSIGNED)
//	FLOAT, DOUBLE            float32, float64
//	CHAR, VARCHAR, TEXT      string
//	BINARY, VARBINARY, BLOB  []byte (and strings of charset binary)
//	DECIMAL                  tidbcodec.Decimal (String() is its text)
//	DATE, DATETIME, TIMESTAMP tidbcodec.Time (TIMESTAMP in UTC)
//	TIME                     time.Duration
//	ENUM, SET                string: the member, or the members joined by ','
//	BIT                      uint64
//	JSON                     string: the JSON text
type Column struct {
	Name  string
	Info  *tidbcodec.ColumnInfo
	Value any
}

// Row is a decoded row change.
type Row struct {
	TableID    int64 // the table (a partitioned table's, not the partition's)
	PhysicalID int64 // the id in the row's key: the partition's, or TableID
	DB, Table  string
	CommitTs   uint64
	StartTs    uint64
	Delete     bool
	// SchemaVersion and Schema: the definition the row was decoded with.
	SchemaVersion int64
	Schema        *TableSchema
	// Columns are the row's values after the change (nil for a delete).
	Columns []Column
	// Old are the values before it, when the server has them (nil
	// otherwise); for a delete without them, only the handle column of a
	// table keyed by its int primary key is known, in Old.
	Old []Column
	// Handle is the record key's handle when it is an int (the int primary
	// key, or _tidb_rowid of a table without one); IntHandle says so.
	Handle    int64
	IntHandle bool
}

// Decoder decodes rows with the schemas of a tenant.
type Decoder struct {
	schemas *Schemas
}

// NewDecoder decodes rows of a tenant. Feed it (Observe) every event of the
// stream whose rows it decodes.
func (c *Client) NewDecoder(tenant uint64) *Decoder { return &Decoder{schemas: c.NewSchemas(tenant)} }

// Observe learns the table definitions a DDL event carries.
func (d *Decoder) Observe(ev Event) error { return d.schemas.Observe(ev) }

// Schemas is the decoder's schema cache.
func (d *Decoder) Schemas() *Schemas { return d.schemas }

// Decode decodes a row change with its table's schema at the row's schema
// version. Malformed bytes are an error naming the row, never a panic.
func (d *Decoder) Decode(ctx context.Context, r *apiv1.RowChange) (*Row, error) {
	physID, h, err := tidbcodec.DecodeRecordKeyHandle(r.Key)
	if err != nil {
		return nil, fmt.Errorf("tistream: row key %x at %d: %w", r.Key, r.CommitTs, err)
	}
	ts, err := d.schemas.Table(ctx, physID, r.SchemaVersion, r.CommitTs)
	if err != nil {
		return nil, err
	}
	return DecodeRow(ts, r, physID, h)
}

// DecodeRow decodes a row change with a given schema; physID and h come
// from the row's key (tidbcodec.DecodeRecordKeyHandle).
func DecodeRow(ts *TableSchema, r *apiv1.RowChange, physID int64, h tidbcodec.Handle) (*Row, error) {
	out := &Row{TableID: ts.Info.ID, PhysicalID: physID, DB: ts.DB, Table: ts.Info.Name.O, CommitTs: r.CommitTs,
		StartTs: r.StartTs, Delete: r.Op == apiv1.Op_OP_DELETE, SchemaVersion: r.SchemaVersion, Schema: ts,
		Handle: h.Int, IntHandle: !h.IsCommon()}
	var err error
	if !out.Delete {
		if out.Columns, err = ts.decodeValue(r.Value, out); err != nil {
			return nil, fmt.Errorf("tistream: row %x of %s.%s at %d: %w", r.Key, ts.DB, ts.Info.Name.O, r.CommitTs, err)
		}
	}
	switch {
	case len(r.OldValue) > 0:
		if out.Old, err = ts.decodeValue(r.OldValue, out); err != nil {
			return nil, fmt.Errorf("tistream: old value of row %x of %s.%s at %d: %w", r.Key, ts.DB, ts.Info.Name.O, r.CommitTs, err)
		}
	case out.Delete && ts.handle != nil && out.IntHandle:
		out.Old = []Column{{Name: ts.handle.Name.O, Info: ts.handle, Value: intValue(ts.handle, out.Handle)}}
	}
	return out, nil
}

// decodeValue decodes a row-format-v2 value into the public columns: NULL,
// the stored value, the handle for the int primary key, or the column's
// origin default for a column added after the row was written.
func (ts *TableSchema) decodeValue(value []byte, r *Row) ([]Column, error) {
	vals, err := tidbcodec.DecodeRow(value, ts.descs)
	if err != nil {
		return nil, err
	}
	cols := make([]Column, len(ts.Columns))
	for i, c := range ts.Columns {
		cols[i] = Column{Name: c.Name.O, Info: c}
		v, ok := vals[c.ID]
		switch {
		case ok:
			cols[i].Value, err = goValue(c, v)
		case c == ts.handle && r.IntHandle:
			cols[i].Value = intValue(c, r.Handle)
		default:
			cols[i].Value, err = originDefault(c)
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name.O, err)
		}
	}
	return cols, nil
}

func intValue(c *tidbcodec.ColumnInfo, h int64) any {
	if c.FieldType.Flag&tidbcodec.UnsignedFlag != 0 {
		return uint64(h)
	}
	return h
}
