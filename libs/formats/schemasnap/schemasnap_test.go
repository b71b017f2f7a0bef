package schemasnap

import (
	"errors"
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
