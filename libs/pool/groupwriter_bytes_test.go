package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// The group writer hands a publication to the store in parts (the index,
// then each range's section as it was staged) instead of joining them: the
// bytes stored must be the ones the one-slice writer wrote.

// goldenPubs publishes three rounds of a group with a fixed clock — ranges
// with rows, idle ones, one whose rows are a large section, one with an
// empty interval — and returns the publication objects as stored.
func goldenPubs(t *testing.T, store objstore.Store) [][]byte {
	t.Helper()
	at := time.Unix(1_760_000_000, 0)
	o := noSegments
	o.Now = func() time.Time { return at }
	g := newGroup(t, store, 1, "golden", o)
	rng := rand.New(rand.NewPCG(2026, 12))
	type rangeRows struct {
		w    *RangeWriter
		rows []Row
	}
	var rs []rangeRows
	for id := uint64(1); id <= 6; id++ {
		w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: id, OpenedAt: 100}, 1)
		require.NoError(t, err)
		n := []int{40, 0, 3000, 1, 0, 200}[id-1]
		rs = append(rs, rangeRows{w, genRows(rng, n, []int64{int64(10 + id)}, 100)})
	}
	var objs [][]byte
	for round, wm := range []uint64{400, 2000, 20000} {
		var staged []*Staged
		for i, r := range rs {
			if round == 1 && i%2 == 1 {
				continue // not flushed this round: listed at its published watermark
			}
			s, err := r.w.Stage(wm, rowsIn(r.rows, r.w.Watermark(), wm))
			require.NoError(t, err)
			staged = append(staged, s)
		}
		res, err := g.Publish(ctx, staged)
		require.NoError(t, err)
		require.NotZero(t, res.Seq)
		obj, err := store.Get(ctx, layout.GroupPubKey(1, g.ID(), res.Seq))
		require.NoError(t, err)
		require.Equal(t, res.Bytes, len(obj))
		objs = append(objs, obj)
		at = at.Add(time.Second)
	}
	return objs
}

// goldenPubsSHA256 is the hash of goldenPubs' objects, one after another,
// under each zstd codec (container.Codecs): the Go codec's as the writer
// before objects in parts (commit 918646c: the index and the sections
// copied into one object by AppendPub) wrote them; libzstd's when it became
// the default.
var goldenPubsSHA256 = map[string]string{
	"go": "a2ad8fd920c2d61d4d49f038d24604bcda732d69c1e1a921e2fd3a43e462e2c3",
	"c":  "0ec25f5bb9b60f50a24dbff34d6b992e84b2a628f4f672691056333cbc17aa8e",
}

func sumPubs(objs [][]byte) string {
	h := sha256.New()
	for _, o := range objs {
		h.Write(o)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// partsRecorder records the parts of every object written in parts.
type partsRecorder struct {
	objstore.Store
	mu    sync.Mutex
	parts map[string][][]byte // copies
}

func (r *partsRecorder) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return r.record(key, parts, objstore.PutParts(ctx, r.Store, key, parts...))
}

func (r *partsRecorder) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return r.record(key, parts, objstore.PutIfAbsentParts(ctx, r.Store, key, parts...))
}

func (r *partsRecorder) record(key string, parts [][]byte, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := make([][]byte, len(parts))
	for i, p := range parts {
		cp[i] = slices.Clone(p)
	}
	r.parts[key] = cp
	return err
}

// TestPubBytesUnchanged: the publications written in parts are, byte for
// byte, those of the writer that joined them (the pinned hash), and each
// is EncodePub of its index and sections: the one-slice form and the parts
// agree. A section may itself be several parts (built in recycled buffers
// smaller than it), with the same bytes. Through a store without PartsPutter (the parts joined by
// objstore.PutIfAbsentParts) the bytes are the same too.
func TestPubBytesUnchanged(t *testing.T) {
	for _, name := range container.Codecs() {
		t.Run(name, func(t *testing.T) {
			restore, err := container.UseCodec(name)
			require.NoError(t, err)
			defer restore()
			testPubBytesUnchanged(t, goldenPubsSHA256[name])
		})
	}
}

func testPubBytesUnchanged(t *testing.T, goldenPubsSHA256 string) {
	rec := &partsRecorder{Store: objstore.NewMemory(), parts: map[string][][]byte{}}
	objs := goldenPubs(t, rec)
	require.Equal(t, goldenPubsSHA256, sumPubs(objs), "publication bytes changed")
	require.Len(t, rec.parts, len(objs))
	for seq, obj := range objs {
		key := layout.GroupPubKey(1, "golden", uint64(seq+1))
		parts := rec.parts[key]
		require.GreaterOrEqual(t, len(parts), 2, "%s: written in parts, the index and the sections", key)
		require.Equal(t, obj, slices.Concat(parts...), key)
		p, n, err := DecodePubIndex(key, obj)
		require.NoError(t, err)
		require.Equal(t, int64(len(parts[0])), n, "%s: the first part is the index", key)
		// Each section is one part or more (a section built in several
		// recycled buffers), in the index's order, and nothing else.
		rest := parts[1:]
		for _, st := range p.Ranges {
			if st.Section != nil {
				var got []byte
				for len(got) < int(st.Section.Length) && len(rest) > 0 {
					got, rest = append(got, rest[0]...), rest[1:]
				}
				require.Equal(t, obj[n+int64(st.Section.Offset):][:st.Section.Length], got, "%s range %d", key, st.RangeId)
			}
		}
		require.Empty(t, rest, key)
		enc, err := EncodePub(p.GroupPublication, parts[1:]...)
		require.NoError(t, err)
		require.Equal(t, obj, enc, "%s: EncodePub of the same input", key)
	}
	type plain struct{ objstore.Store }
	require.Equal(t, goldenPubsSHA256, sumPubs(goldenPubs(t, plain{objstore.NewMemory()})), "joined by the fallback")
	local, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	require.Equal(t, goldenPubsSHA256, sumPubs(goldenPubs(t, local)), "on local disk")
}
