package schema_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// snapshotWith writes a schema snapshot of tenant 1 at ts 100 with one
// database (id 1) and the given TableInfo JSONs.
func snapshotWith(t *testing.T, tables ...string) []byte {
	t.Helper()
	w, err := schemasnap.NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: 1, TenantId: 1, Ts: 100, SchemaVersion: 7,
		DbCount: 1, TableCount: uint64(len(tables))})
	require.NoError(t, err)
	require.NoError(t, w.AddDatabase(1, []byte(`{"id":1,"db_name":{"O":"d","L":"d"},"state":5}`)))
	for _, tb := range tables {
		require.NoError(t, w.AddTable(1, []byte(tb)))
	}
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

// The history keeps a table's head decoded (id, name, partitions) and its
// TableInfo as TiDB's JSON: the head agrees with the whole TableInfo for a
// plain and a partitioned table, and Decode reads the rest.
func TestTableHeadAgreesWithTableInfo(t *testing.T) {
	plain, err := tidbcodec.NewTableBuilder(10, "Plain").IntPrimaryKey("id", tidbcodec.IntType(tidbcodec.TypeLonglong, false)).
		Column("v", tidbcodec.VarcharType(10)).Build()
	require.NoError(t, err)
	parted := *plain
	parted.ID, parted.Name = 20, tidbcodec.NewCIStr("Parted")
	parted.Partition = json.RawMessage(`{"type":1,"expr":"id","definitions":[{"id":21,"name":{"O":"p0","L":"p0"}},{"id":22,"name":{"O":"p1","L":"p1"}}],"num":2}`)
	var raws []string
	for _, ti := range []*tidbcodec.TableInfo{plain, &parted} {
		b, err := json.Marshal(ti)
		require.NoError(t, err)
		raws = append(raws, string(b))
	}
	h := schema.New(1)
	require.NoError(t, h.LoadSnapshotFile("snap", snapshotWith(t, raws...)))
	for i, want := range []*tidbcodec.TableInfo{plain, &parted} {
		got, ok := h.Table(want.ID, 100)
		require.True(t, ok)
		require.Equal(t, want.ID, got.Info.ID)
		require.Equal(t, want.Name, got.Info.Name)
		wantIDs, err := want.PhysicalIDs()
		require.NoError(t, err)
		gotIDs, err := got.Info.PhysicalIDs()
		require.NoError(t, err)
		require.Equal(t, wantIDs, gotIDs)
		require.JSONEq(t, raws[i], string(got.Raw), "Raw is TiDB's JSON as it came")
		full, err := got.Decode()
		require.NoError(t, err)
		require.Equal(t, len(want.Columns), len(full.Columns))
		require.Equal(t, want.PKIsHandle, full.PKIsHandle)
	}
	p, _ := h.Table(10, 100)
	require.Nil(t, p.Info.Partition, "a null partition is kept as none")
	ids, err := h.Tables(1, 100)[1].Info.PhysicalIDs()
	require.NoError(t, err)
	require.Equal(t, []int64{21, 22}, ids)
}

// A snapshot whose TableInfo is not what the head needs fails the load
// with the table's database and the snapshot's ts in the error: not JSON,
// an id that is not a number, JSON cut short.
func TestSnapshotFileWithBadTableInfo(t *testing.T) {
	for _, bad := range []string{
		`{"id":"ten","name":{"O":"t","L":"t"}}`,
		`{"id":10,"name":{"O":"t","L":"t"},"cols":[`,
		`{"id":10,"name":{"O":"t","L":"t"}}}`,
	} {
		h := schema.New(1)
		err := h.LoadSnapshotFile("snap", snapshotWith(t, bad))
		require.ErrorContains(t, err, "TableInfo in db 1 of the snapshot at 100", bad)
	}
	// Another tenant's snapshot is refused before anything is read.
	h := schema.New(2)
	require.ErrorContains(t, h.LoadSnapshotFile("snap", snapshotWith(t)), "schema snapshot of tenant 1 loaded into tenant 2")
}

// Loading a snapshot file object by object builds the same history as
// loading it decoded whole (the simulator's snapshot of 200 tables),
// byte for byte in the history's own encoding.
func TestSnapshotFileLoadsAsDecoded(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Duration = 2 * time.Second
	cfg.RowsPerSec = 100
	cfg.DBs, cfg.Tables = 4, 200
	store, _, _ := simtest.Run(t, cfg)
	key, b, snap := simSnapshot(t, store, cfg.ClusterID)
	whole := schema.New(1)
	require.NoError(t, whole.LoadSnapshot(snap))
	streamed := schema.New(1)
	require.NoError(t, streamed.LoadSnapshotFile(key, b))
	a, err := whole.Encode()
	require.NoError(t, err)
	c, err := streamed.Encode()
	require.NoError(t, err)
	require.Equal(t, a, c)
	tables := 0
	for _, d := range streamed.DBs(snap.Header.Ts) {
		for _, tb := range streamed.Tables(d.Info.ID, snap.Header.Ts) {
			full, err := tb.Decode()
			require.NoError(t, err)
			require.Equal(t, full.ID, tb.Info.ID)
			require.Equal(t, full.Name, tb.Info.Name)
			tables++
		}
	}
	require.Equal(t, int(snap.Header.TableCount), tables)
	require.Equal(t, 200, tables)
}

// A decoded history's tables keep their TableInfo JSON in the file's
// blocks (each in memory of its own): across many blocks every table's
// Raw is still its own after the whole file is read, and after the file's
// bytes are overwritten.
func TestDecodedTablesKeepTheirJSON(t *testing.T) {
	var raws []string
	for i := 0; i < 3000; i++ {
		raws = append(raws, fmt.Sprintf(`{"id":%d,"name":{"O":"t%d","L":"t%d"},"comment":"%s","partition":null}`,
			1000+i, i, i, strings.Repeat(strconv.Itoa(i*7919), 60)))
	}
	h := schema.New(1)
	require.NoError(t, h.LoadSnapshotFile("snap", snapshotWith(t, raws...)))
	b, err := h.Encode()
	require.NoError(t, err)
	got, err := schema.Decode("h", b)
	require.NoError(t, err)
	clear(b)
	for i, raw := range raws {
		tb, ok := got.Table(int64(1000+i), 100)
		require.True(t, ok)
		require.Equal(t, raw, string(tb.Raw), "table %d", 1000+i)
		require.Equal(t, fmt.Sprintf("t%d", i), tb.Info.Name.O)
	}
}

// simSnapshot reads the schema snapshot of tenant 1 that a simulator run
// wrote to store: its key, its bytes and the file decoded.
func simSnapshot(t testing.TB, store objstore.Store, cluster uint64) (string, []byte, *schemasnap.Snapshot) {
	t.Helper()
	ctx := context.Background()
	snaps, _, err := store.List(ctx, layout.SchemaSnapshotPrefix(cluster, 1), "", 1)
	require.NoError(t, err)
	b, err := store.Get(ctx, snaps[0].Key)
	require.NoError(t, err)
	snap, err := schemasnap.Decode(snaps[0].Key, b)
	require.NoError(t, err)
	return snaps[0].Key, b, snap
}

// A load counts the table versions it has put into the history, of the
// total the file announced: from the pool's snapshot and from a persisted
// history, which holds a second version of one table.
func TestLoadProgressCounts(t *testing.T) {
	ctx := context.Background()
	var raws []string
	for i := 0; i < 50; i++ {
		raws = append(raws, fmt.Sprintf(`{"id":%d,"name":{"O":"t%d","L":"t%d"}}`, 1000+i, i, i))
	}
	store := objstore.NewMemory()
	require.NoError(t, store.Put(ctx, layout.PoolSchemaSnapshotKey(1, 100), snapshotWith(t, raws...)))
	var p schema.LoadProgress
	h, err := schema.LoadFromPoolWith(ctx, store, 1, &p)
	require.NoError(t, err)
	done, total := p.Tables()
	require.Equal(t, [2]int64{50, 50}, [2]int64{done, total})

	changed, err := h.ApplyMeta(200, tidbcodec.EncodeMetaHashKey([]byte("DB:1"), []byte("Table:1000")), formatv1.Op_OP_PUT,
		[]byte(`{"id":1000,"name":{"O":"renamed","L":"renamed"}}`))
	require.NoError(t, err)
	require.True(t, changed)
	h.SetResolved(200)
	b, err := h.Encode()
	require.NoError(t, err)
	var q schema.LoadProgress
	_, err = schema.DecodeWith("h", b, &q)
	require.NoError(t, err)
	done, total = q.Tables()
	require.Equal(t, [2]int64{51, 51}, [2]int64{done, total})

	_, err = schema.DecodeWith("h", b, nil) // nil counts nothing
	require.NoError(t, err)
}
