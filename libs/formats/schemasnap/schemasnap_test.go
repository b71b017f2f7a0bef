package schemasnap

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

func sample(t testing.TB) []byte {
	w, err := NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: 1, TenantId: 2, Ts: 100, DbCount: 1, TableCount: 2})
	require.NoError(t, err)
	require.NoError(t, w.AddDatabase(10, []byte(`{"id":10}`)))
	require.NoError(t, w.AddTable(10, []byte(`{"id":11}`)))
	require.NoError(t, w.AddTable(10, []byte(`{"id":12}`)))
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

func TestRoundTripAndRules(t *testing.T) {
	s, err := Decode("snap", sample(t))
	require.NoError(t, err)
	require.Len(t, s.Objects, 3)
	require.Equal(t, uint64(100), s.Header.Ts)

	w, err := NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: 1, DbCount: 1, TableCount: 1})
	require.NoError(t, err)
	require.ErrorContains(t, w.AddTable(10, []byte(`{}`)), "outside its database")
	require.NoError(t, w.AddDatabase(10, []byte(`{}`)))
	_, err = w.Finish()
	require.ErrorContains(t, err, "header counts")
}

// Decode names the first object whose JSON is not valid, however many
// objects there are (they are checked in parallel parts): here the last
// table of db 10, though db 20's own info, later in the file, is bad too.
func TestDecodeNamesTheFirstBadJSON(t *testing.T) {
	for _, n := range []int{4, 10_000} {
		w, err := NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: 1, TenantId: 2, Ts: 100, DbCount: 2, TableCount: uint64(n)})
		require.NoError(t, err)
		require.NoError(t, w.AddDatabase(10, []byte(`{"id":10}`)))
		for i := range n / 2 {
			info := fmt.Sprintf(`{"id":%d}`, 100+i)
			if i == n/2-1 {
				info = fmt.Sprintf(`{"id":%d,}`, 100+i)
			}
			require.NoError(t, w.AddTable(10, []byte(info)))
		}
		require.NoError(t, w.AddDatabase(20, []byte(`{"id":20,"db_name":}`)))
		for i := n / 2; i < n; i++ {
			require.NoError(t, w.AddTable(20, []byte(fmt.Sprintf(`{"id":%d}`, 100+i))))
		}
		b, err := w.Finish()
		require.NoError(t, err)
		_, err = Decode("snap", b)
		require.ErrorIs(t, err, container.ErrCorrupt)
		require.ErrorContains(t, err, "info_json of KIND_TABLE 10 is not valid JSON", "%d tables", n)
	}
}

func FuzzDecode(f *testing.F) {
	hdr, _ := proto.Marshal(&formatv1.SchemaSnapshotHeader{ClusterId: 1, TenantId: 2, Ts: 100, DbCount: 1, TableCount: 1})
	db, _ := proto.Marshal(&formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_DATABASE, DbId: 10, InfoJson: []byte(`{"id":10}`)})
	tb, _ := proto.Marshal(&formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: 10, InfoJson: []byte(`{"id":11}`)})
	f.Add(hdr, db, tb)
	f.Fuzz(func(t *testing.T, hdr, a, b []byte) {
		w := container.NewWriter(container.KindSchemaSnapshot, container.Options{})
		for _, r := range [][]byte{hdr, a, b} {
			if w.Append(r) != nil {
				return
			}
		}
		data, err := w.Finish()
		if err != nil {
			return
		}
		s, err := Decode("fuzz", data)
		if err != nil && !errors.Is(err, container.ErrCorrupt) {
			t.Fatalf("error is not a CorruptError: %v", err)
		}
		// Scan (which leaves whole-JSON checks to its caller) takes
		// everything Decode takes, object for object.
		n := 0
		_, serr := Scan("fuzz", data, func(*formatv1.SchemaObject) error { n++; return nil })
		if serr != nil && !errors.Is(serr, container.ErrCorrupt) {
			t.Fatalf("Scan error is not a CorruptError: %v", serr)
		}
		if err == nil && (serr != nil || n != len(s.Objects)) {
			t.Fatalf("Decode took %d objects, Scan %d (%v)", len(s.Objects), n, serr)
		}
	})
}
