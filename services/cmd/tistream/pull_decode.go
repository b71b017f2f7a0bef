package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"

	"github.com/tistream/tistream/client"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
)

// decodeWriter writes a pull as decoded JSON Lines (pull --decode): rows
// with their columns by name (and the old values), DDLs with their
// statement, resolved ts. Values are JSON numbers and strings; bytes are
// base64, DECIMAL, DATE/DATETIME/TIMESTAMP and TIME their MySQL text, JSON
// columns TiDB's binary form (base64).
type decodeWriter struct {
	ctx    context.Context
	w      *bufio.Writer
	dec    *client.Decoder
	tenant uint64
	line   []byte
}

func newDecodeWriter(ctx context.Context, out io.Writer, conn grpc.ClientConnInterface, tenant uint64) *decodeWriter {
	cli := client.New(conn, client.Options{Logger: slog.New(slog.DiscardHandler)})
	return &decodeWriter{ctx: ctx, w: bufio.NewWriterSize(out, 64<<10), dec: cli.NewDecoder(tenant), tenant: tenant}
}

func (d *decodeWriter) flush() error { return d.w.Flush() }

// write writes a message's events; done once a resolved ts reaches until.
func (d *decodeWriter) write(batch []*apiv1.PullEvent, until uint64, sum *pullSummary) (done bool, err error) {
	for _, pe := range batch {
		ev, ok := client.EventOf(pe)
		if !ok {
			continue
		}
		if err := d.dec.Observe(ev); err != nil {
			return false, err
		}
		switch ev.Kind {
		case client.EventRow:
			r, err := d.dec.Decode(d.ctx, ev.Row)
			if err != nil {
				return false, err
			}
			d.row(r)
			sum.rows++
		case client.EventDDL:
			d.ddl(ev.DDL)
			sum.ddls++
		case client.EventResolved:
			d.line = fmt.Appendf(d.line[:0], `{"type":"resolved","ts":%d}`+"\n", ev.Resolved)
			if _, err := d.w.Write(d.line); err != nil {
				return false, err
			}
			sum.resolved = ev.Resolved
			if until != 0 && ev.Resolved >= until {
				return true, nil
			}
		}
	}
	return false, nil
}

func (d *decodeWriter) row(r *client.Row) {
	op := "put"
	if r.Delete {
		op = "delete"
	}
	b := fmt.Appendf(d.line[:0], `{"type":"row","tenant":%d,"db":%s,"table":%s,"table_id":%d,"commit_ts":%d,"start_ts":%d,"op":%q,"schema_version":%d`,
		d.tenant, jsonString(r.DB), jsonString(r.Table), r.PhysicalID, r.CommitTs, r.StartTs, op, r.SchemaVersion)
	if r.Columns != nil {
		b = appendColumns(append(b, `,"columns":`...), r.Columns)
	}
	if r.Old != nil {
		b = appendColumns(append(b, `,"old":`...), r.Old)
	}
	d.line = append(b, "}\n"...)
	_, _ = d.w.Write(d.line) // a write error sticks in the bufio.Writer; flush reports it
}

func (d *decodeWriter) ddl(x *apiv1.DDL) {
	m := map[string]any{"type": "ddl", "tenant": d.tenant, "commit_ts": x.CommitTs, "schema_version": x.SchemaVersion,
		"kind": strings.ToLower(strings.TrimPrefix(x.Kind.String(), "KIND_")), "db_id": x.DbId, "table_id": x.TableId,
		"db": x.DbName, "table": x.TableName}
	for k, v := range map[string]any{"query": x.Query, "job_id": x.JobId, "job_type": x.JobType, "old_db": x.OldDbName,
		"old_table": x.OldTableName, "old_table_id": x.OldTableId} {
		if v != "" && v != int64(0) && v != int32(0) {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m) // plain values: cannot fail
	_, _ = d.w.Write(append(b, '\n'))
}

// appendColumns writes columns as a JSON object in table order.
func appendColumns(b []byte, cols []client.Column) []byte {
	b = append(b, '{')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(b, jsonString(c.Name)...), ':')
		v, _ := client.PlainValue(c)
		switch x := v.(type) {
		case float32:
			v = jsonFloat(float64(x))
		case float64:
			v = jsonFloat(x)
		}
		enc, err := json.Marshal(v)
		if err != nil {
			enc = []byte("null")
		}
		b = append(b, enc...)
	}
	return append(b, '}')
}

// jsonFloat: JSON has no NaN or infinities; they become null.
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
