//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// truthTable is a table as the simulator's truth has it at a ts: its
// definition and its rows (record handle -> row-format-v2 value).
type truthTable struct {
	db   string
	info *tc.TableInfo
	rows map[int64][]byte
}

// foldTruth replays the truth up to ts: the tenant's schema snapshot (read
// from the data change buffer, where the simulator wrote it), then every
// DDL (each truth DDL line carries the table's new TableInfo) and every
// row change committed at or before ts. It uses nothing TiStream served.
func foldTruth(t *testing.T, bufferURL, truthPath string, ts uint64) map[int64]*truthTable {
	t.Helper()
	tables := map[int64]*truthTable{}
	ctx := context.Background()
	store, err := objstore.Open(ctx, bufferURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := layout.SchemaSnapshotPrefix(1, 1)
	objs, err := objstore.ListAll(ctx, store, prefix, "")
	if err != nil || len(objs) == 0 {
		t.Fatalf("schema snapshot under %s: %v (%d objects)", prefix, err, len(objs))
	}
	b, err := store.Get(ctx, objs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := schemasnap.Decode(objs[0].Key, b)
	if err != nil {
		t.Fatal(err)
	}
	dbNames := map[int64]string{}
	for _, o := range snap.Objects { // each database comes before its tables
		switch o.Kind {
		case formatv1.SchemaObject_KIND_DATABASE:
			db := &tc.DBInfo{}
			if err := json.Unmarshal(o.InfoJson, db); err != nil {
				t.Fatal(err)
			}
			dbNames[o.DbId] = db.Name.O
		case formatv1.SchemaObject_KIND_TABLE:
			info := &tc.TableInfo{}
			if err := json.Unmarshal(o.InfoJson, info); err != nil {
				t.Fatal(err)
			}
			tables[info.ID] = &truthTable{db: dbNames[o.DbId], info: info, rows: map[int64][]byte{}}
		}
	}
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := truth.NewReader(f, truthPath)
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case l.Kind == truth.KindDDL && l.DDL.CommitTs <= ts:
			d := l.DDL
			delete(tables, d.OldTableID)
			if d.Action == "drop_table" {
				delete(tables, d.TableID)
				continue
			}
			info := &tc.TableInfo{}
			if err := json.Unmarshal(d.TableInfo, info); err != nil {
				t.Fatalf("truth DDL %+v: %v", d, err)
			}
			if tb := tables[d.TableID]; tb != nil {
				tb.db, tb.info = d.DBName, info
			} else {
				tables[d.TableID] = &truthTable{db: d.DBName, info: info, rows: map[int64][]byte{}}
			}
		case l.Kind == truth.KindRow && l.Row.CommitTs <= ts:
			tb := tables[l.Row.TableID]
			if tb == nil {
				t.Fatalf("truth row of table %d at %d, a table the truth does not have", l.Row.TableID, l.Row.CommitTs)
			}
			_, h, err := tc.DecodeRecordKey(l.Row.Key)
			if err != nil {
				t.Fatal(err)
			}
			if l.Row.Op == truth.OpDelete {
				delete(tb.rows, h)
			} else {
				tb.rows[h] = append([]byte(nil), l.Row.Value...)
			}
		}
	}
	return tables
}

// expectedRows renders a truth table's rows as the downstream must hold
// them: the public columns in table order, each row as column=value text
// (NULL for NULL), sorted by handle. The simulator's tables have an int
// primary key (the handle), INT and VARCHAR columns, and columns added
// later without a default (NULL in rows written before).
func (tb *truthTable) expectedRows(t *testing.T) (cols []string, rows []string) {
	var descs []tc.ColumnDesc
	var pub []*tc.ColumnInfo
	for _, c := range tb.info.Columns {
		if c.State == tc.StatePublic {
			pub = append(pub, c)
		}
	}
	sort.SliceStable(pub, func(i, j int) bool { return pub[i].Offset < pub[j].Offset })
	for _, c := range pub {
		cols = append(cols, c.Name.O)
		descs = append(descs, tc.ColumnDescOf(c))
	}
	handles := make([]int64, 0, len(tb.rows))
	for h := range tb.rows {
		handles = append(handles, h)
	}
	sort.Slice(handles, func(i, j int) bool { return handles[i] < handles[j] })
	for _, h := range handles {
		vals, err := tc.DecodeRow(tb.rows[h], descs)
		if err != nil {
			t.Fatalf("truth row %d of %s: %v", h, tb.info.Name.O, err)
		}
		parts := make([]string, len(pub))
		for i, c := range pub {
			v, ok := vals[c.ID]
			switch {
			case c.FieldType.Flag&tc.PriKeyFlag != 0 && tb.info.PKIsHandle:
				parts[i] = strconv.FormatInt(h, 10)
			case !ok || v.IsNull():
				parts[i] = "NULL"
			case v.Kind == tc.KindBytes:
				parts[i] = string(v.Bytes)
			case v.Kind == tc.KindInt64:
				parts[i] = strconv.FormatInt(v.Int, 10)
			default:
				t.Fatalf("truth row %d of %s column %s: the simulator writes no %s", h, tb.info.Name.O, c.Name.O, v.Kind)
			}
		}
		rows = append(rows, strings.Join(parts, "|"))
	}
	return cols, rows
}

// checksum is sync_diff_inspector's table checksum over rows rendered as
// column values: the XOR of each row's CRC32 of its non-NULL values joined
// by ',' (what CONCAT_WS computes), and the count.
func checksum(rows []string) (count int, sum uint32) {
	for _, r := range rows {
		var vals []string
		for _, v := range strings.Split(r, "|") {
			if v != "NULL" {
				vals = append(vals, v)
			}
		}
		sum ^= crc32.ChecksumIEEE([]byte(strings.Join(vals, ",")))
		count++
	}
	return count, sum
}

func tableKey(db, name string) string { return fmt.Sprintf("%s.%s", db, name) }
