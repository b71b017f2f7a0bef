package storefile

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// exampleFile builds the worked example of docs/formats/store-change-file.md.
func exampleFile(t *testing.T) []byte {
	h := &formatv1.StoreFileHeader{ClusterId: 7, TenantId: 1, StoreId: 1, Seq: 1, MaxTs: 450,
		CreatedUnixMs: 1767225600000, Producer: "example"}
	w, err := NewWriterOptions(h, container.Options{Codec: container.CodecNone})
	require.NoError(t, err)
	r := &metapb.Region{Id: 2, StartKey: tidbcodec.EncodeRegionKey(tidbcodec.TablePrefix(100)),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1}}
	ri, err := Incarnation{Region: r, Term: 6}.Encode()
	require.NoError(t, err)
	require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
		Reason: formatv1.RegionChange_REASON_BOOTSTRAP, Incarnation: ri}))
	key := tidbcodec.EncodeRecordKey(100, 1)
	require.NoError(t, w.AddEvent(rowsEvent(2,
		&cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT, Key: key, Value: []byte("value"), StartTs: 100},
		&cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_PUT, Key: key, StartTs: 100, CommitTs: 120})))
	require.NoError(t, w.AddEvent(resolvedEvent(400, 2)))
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

// TestWorkedExample pins the example file byte for byte and checks that the
// spec shows exactly its hex dump. UPDATE_GOLDEN=1 rewrites the file.
func TestWorkedExample(t *testing.T) {
	b := exampleFile(t)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile("testdata/example.tscf", b, 0o644))
	}
	golden, err := os.ReadFile("testdata/example.tscf")
	require.NoError(t, err)
	require.Equal(t, golden, b, "encoder output changed: the format is a public contract")

	recs, err := readAll("example", golden)
	require.NoError(t, err)
	require.Len(t, recs, 3)

	doc, err := os.ReadFile("../../../docs/formats/store-change-file.md")
	require.NoError(t, err)
	dump := strings.TrimSpace(hex.Dump(golden))
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		t.Logf("hex dump for the spec:\n%s", dump)
	}
	if !strings.Contains(string(doc), dump) {
		t.Fatalf("docs/formats/store-change-file.md must show the example's hex dump:\n%s", dump)
	}
}
