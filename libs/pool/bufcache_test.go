package pool

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func TestBufCacheTakesBestFitWithinLimit(t *testing.T) {
	var c bufCache
	require.Nil(t, c.take(10))
	c.follow(1 << 20) // limit: minBufCache
	c.put(make([]byte, 5, 100), make([]byte, 0, 1000), make([]byte, 0, 10000), nil)
	require.Equal(t, 11100, c.bytes)
	b := c.take(500)
	require.Equal(t, 1000, cap(b), "the smallest buffer large enough")
	require.Empty(t, b)
	require.Equal(t, 10000, cap(c.take(1<<20)), "none large enough: the largest")
	require.Equal(t, 100, cap(c.take(0)))
	require.Nil(t, c.take(0))
	require.Equal(t, 0, c.bytes)
	c.put(make([]byte, 0, minBufCache), make([]byte, 0, 1)) // the second passes the limit
	require.Equal(t, minBufCache, c.bytes)
	c.follow(maxBufCache) // 2x: the bound
	require.Equal(t, maxBufCache, c.limit)
}

// Sections and publication objects are built in recycled memory; every
// row still reads back, from publications and from segments (sections are
// recycled only once a segment holds a copy), on local disk — a store that
// keeps nothing of what it is given — checked against the rows generated.
func TestRecycledBuffersKeepEveryRow(t *testing.T) {
	for name, o := range map[string]GroupOptions{
		// ~1/3 of the publications reach SegmentBytes alone (not buffered)
		"mixed":         {SegmentBytes: 24 << 10, SegmentPubs: 5, SegmentAge: 1 << 62, Grace: -1},
		"segments-only": {SegmentBytes: 1 << 40, SegmentPubs: 3, SegmentAge: 1 << 62, Grace: time.Nanosecond},
		"unbuffered":    {SegmentBytes: 1, SegmentAge: 1 << 62, Grace: -1}, // every section recycled at once
		"pubs":          noSegments,                                        // sections kept for a segment never cut
	} {
		t.Run(name, func(t *testing.T) {
			store, err := objstore.NewLocalFS(t.TempDir())
			require.NoError(t, err)
			split := key(102, 0)
			require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
			rng := rand.New(rand.NewPCG(5, 9))
			all := genRows(rng, 6000, []int64{100, 101, 102, 103}, 100)
			rows1, rows2 := splitRows(all, split)
			g := newGroup(t, store, 1, "g", o)
			w1, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
			w2, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
			last := all[len(all)-1].CommitTs + 1
			for wm := uint64(100); wm < last; {
				wm = min(wm+uint64(20+rng.IntN(400)), last)
				publishAll(t, g, wm, map[*RangeWriter][]Row{w1: rows1, w2: rows2})
			}
			g.WaitSegments()
			if name == "pubs" {
				require.Zero(t, g.bufs.taken, "a section the segment buffer holds was recycled")
			} else {
				require.Positive(t, g.bufs.taken, "no buffer was recycled")
			}
			got, resolved := pullAll(t, store, 1, nil, 0)
			require.Equal(t, last, resolved)
			requireSameRows(t, all, got, "the tenant")
			for i, want := range [][]Row{rows1, rows2} {
				got, wm, err := readRangeFrom(t, store, uint64(i+1), 0)
				require.NoError(t, err)
				require.Equal(t, last, wm)
				requireSameRows(t, want, got, "range %d", i+1)
			}
		})
	}
}

// decodeFile's rows point into a file it owns where its blocks are stored
// raw (incompressible values), and are copies otherwise: changing the
// bytes of a file it does not own changes no row. Either way the rows are
// the ones written.
func TestDecodeFileAliasesOnlyWhatItOwns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows := genRows(rng, 2000, []int64{100}, 100)
	for i := range rows {
		rows[i].Value = make([]byte, 200)
		for j := range rows[i].Value {
			rows[i].Value[j] = byte(rng.Uint32()) // incompressible: raw blocks
		}
	}
	encode := func() []byte {
		df, err := NewDataFile(&formatv1.CommittedFileHeader{TenantId: 1, RangeId: 1, PrevWatermark: 1, Watermark: rows[len(rows)-1].CommitTs}, 0)
		require.NoError(t, err)
		for i := range rows {
			require.NoError(t, df.Add(&rows[i]))
		}
		b, _, err := df.Finish()
		require.NoError(t, err)
		return b
	}
	for _, own := range []bool{true, false} {
		b := encode()
		v, size, err := decodeFile("f", b, own)
		require.NoError(t, err)
		f := v.(*cachedFile)
		requireSameRows(t, rows, f.rows, "own=%v", own)
		require.GreaterOrEqual(t, size, int64(len(b)), "own=%v: the cache is charged at least the file", own)
		clear(b)
		changed := 0
		for i := range f.rows {
			if string(f.rows[i].Value) != string(rows[i].Value) {
				changed++
			}
		}
		if own {
			require.Equal(t, len(rows), changed, "rows of raw blocks point into the file")
		} else {
			require.Zero(t, changed, "rows of a file not owned are copies")
		}
	}
}
