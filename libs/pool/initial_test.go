package pool

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// The initial ranges split only at table boundaries; from two ranges on,
// the first holds the meta keys and no table, and the tables are spread
// over the others by count.
func TestInitialManifestLayout(t *testing.T) {
	snap := &schemasnap.Snapshot{Header: &formatv1.SchemaSnapshotHeader{Ts: 100}}
	for _, id := range []int64{101, 102, 103, 104, 105, 106, 107, 108, 109} {
		snap.Objects = append(snap.Objects, &formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: 2,
			InfoJson: []byte(fmt.Sprintf(`{"id":%d}`, id))})
	}
	bounds := func(n int) [][]byte {
		m, err := InitialManifest(1, snap, n, time.Now())
		require.NoError(t, err)
		var ends [][]byte
		for i, r := range m.Ranges {
			if i > 0 {
				require.Equal(t, m.Ranges[i-1].EndKey, r.StartKey, "ranges tile the key space")
			}
			ends = append(ends, r.EndKey)
		}
		require.Empty(t, m.Ranges[0].StartKey)
		require.Equal(t, uint64(len(m.Ranges)+1), m.NextRangeId)
		return ends
	}
	tp := tidbcodec.TablePrefix
	require.Equal(t, [][]byte{nil}, bounds(1), "one range: everything")
	require.Equal(t, [][]byte{tp(101), nil}, bounds(2), "the meta keys alone, then every table")
	require.Equal(t, [][]byte{tp(101), tp(104), tp(107), nil}, bounds(4))
	require.Len(t, bounds(50), 10, "at most one range per table, plus the meta keys'")

	meta := tidbcodec.EncodeMetaHashKey([]byte("DB:2"), []byte("Table:101"))
	require.Negative(t, bytes.Compare(meta, tp(101)), "the meta keys sort before every table: they are range 1's alone")
}

// A table whose TableInfo has no readable id stops the manifest with an
// error naming its database; ids are read whatever order the keys come in.
func TestSnapshotTableIDs(t *testing.T) {
	snap := &schemasnap.Snapshot{Header: &formatv1.SchemaSnapshotHeader{Ts: 100}}
	for _, j := range []string{`{"name":{"O":"a","L":"a"},"id":12}`, `{"id":11}`, `{"I\u0044":13}`} {
		snap.Objects = append(snap.Objects, &formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: 2, InfoJson: []byte(j)})
	}
	ids, err := SnapshotTableIDs(snap)
	require.NoError(t, err)
	require.Equal(t, []int64{11, 12, 13}, ids)

	snap.Objects = append(snap.Objects, &formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: 3, InfoJson: []byte(`{"id":"14"}`)})
	_, err = SnapshotTableIDs(snap)
	require.ErrorContains(t, err, "table of db 3")
	_, err = InitialManifest(9, snap, 2, time.Now())
	require.ErrorContains(t, err, "tenant 9")
}
