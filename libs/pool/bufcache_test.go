package pool

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func TestBufCacheTakesBestFitWithinLimit(t *testing.T) {
	var c bufCache
	require.Nil(t, c.take(10, 10))
	c.follow(1 << 20) // limit: minBufCache
	c.put(make([]byte, 5, 100), make([]byte, 0, 1000), make([]byte, 0, 10000), nil)
	require.Equal(t, 11100, c.bytes)
	b := c.take(500, 500)
	require.Equal(t, 1000, cap(b), "the smallest buffer large enough")
	require.Empty(t, b)
	require.Nil(t, c.take(1<<20, 20000), "none large enough to be of use: none")
	require.Equal(t, 10100, c.bytes, "and none dropped")
	require.Equal(t, 10000, cap(c.take(1<<20, 50)), "none large enough: the largest of use (the section goes on in parts)")
	require.Equal(t, 100, cap(c.take(0, 0)))
	require.Nil(t, c.take(0, 0))
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
func TestSizeClass(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 4097, 5000, 65536, 65537, 1 << 20, 3<<20 + 7, 1<<30 - 1} {
		c := sizeClass(n)
		require.GreaterOrEqual(t, c, n)
		require.LessOrEqual(t, c, max(4096, n+n/8), "n=%d", n)
	}
	require.Equal(t, sizeClass(1<<20+1), sizeClass(1<<20+100), "nearby sizes share a class")
}

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

// segmentGate holds every segment put until released.
type segmentGate struct {
	objstore.Store
	release chan struct{}
}

func (s *segmentGate) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	if strings.Contains(key, "/seg/") {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return objstore.PutIfAbsentParts(ctx, s.Store, key, parts...)
}

// A segment is written from the sections as they were staged, so they go
// back to the buffer cache only once its put is done: rounds published
// while a segment's put is held take buffers all the same, and once the
// segment is written (and the publications it covers deleted) every row
// reads back from it, checked against the rows generated.
func TestSegmentKeepsSectionsUntilWritten(t *testing.T) {
	local, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	store := &segmentGate{Store: local, release: make(chan struct{})}
	split := key(102, 0)
	require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
	rng := rand.New(rand.NewPCG(7, 13))
	all := genRows(rng, 6000, []int64{100, 101, 102, 103}, 100)
	rows1, rows2 := splitRows(all, split)
	g := newGroup(t, store, 1, "g", GroupOptions{SegmentBytes: 1 << 40, SegmentPubs: 3, SegmentAge: 1 << 62, Grace: time.Nanosecond})
	w1, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	w2, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	last := all[len(all)-1].CommitTs + 1
	wm := uint64(100)
	publish := func(rounds int) {
		for i := 0; i < rounds && wm < last; i++ {
			wm = min(wm+(last-100)/24, last)
			publishAll(t, g, wm, map[*RangeWriter][]Row{w1: rows1, w2: rows2})
		}
	}
	publish(3) // the first segment's put is held
	taken := g.bufs.taken
	// More segments queue (two) or are skipped, and rounds go on taking
	// the skipped ones' buffers: twelve rounds are four segments, so one
	// is skipped with three rounds to follow whether or not the segment
	// loop has taken the held one off the queue yet (with nine, when it
	// had, the skipped one was the last round's: 8 % of runs at -cpu 1).
	publish(12)
	require.Greater(t, g.bufs.taken, taken, "no buffer recycled while the first segment was held")
	close(store.release)
	publish(24)
	g.WaitSegments()
	_, err = store.Get(ctx, layout.GroupPubKey(1, "g", 1))
	require.ErrorIs(t, err, objstore.ErrNotFound, "the first publication was not deleted: its segment was not read")
	got, resolved := pullAll(t, store, 1, nil, 0)
	require.Equal(t, last, resolved)
	requireSameRows(t, all, got, "the tenant")
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
		v, size, err := decodeFile("f", b, own, nil)
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

// SectionBound holds every section for certain, from rows of nothing but
// a one-byte key at the largest timestamps to rows of large values: a
// section built in a buffer that large never grows into new memory.
func TestSectionBoundHoldsTheSection(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, shape := range []struct {
		name      string
		key, val  int
		old       bool
		rows      int
		commitTop uint64
	}{
		{"tiny rows, huge ts", 1, 0, false, 50000, 1<<64 - 1},
		{"workload rows", 19, 256, false, 5000, 1 << 50},
		{"old values", 30, 100, true, 3000, 1 << 40},
		{"large values", 40, 200 << 10, false, 40, 1 << 30},
		{"one row", 1, 0, false, 1, 2},
	} {
		t.Run(shape.name, func(t *testing.T) {
			// Random bytes and timestamps: nothing for the codec to shrink.
			rows := make([]Row, shape.rows)
			payload := 0
			ts := shape.commitTop - uint64(shape.rows)<<20
			for i := range rows {
				k := make([]byte, shape.key)
				for j := range k {
					k[j] = byte(rng.Uint32())
				}
				ts += 1 + rng.Uint64N(1<<20)
				r := Row{CommitTs: ts, StartTs: ts - 1 - rng.Uint64N(1<<30), Op: formatv1.Op_OP_PUT, Key: k}
				if shape.val > 0 {
					r.Value = make([]byte, shape.val)
					for j := range r.Value {
						r.Value[j] = byte(rng.Uint32())
					}
				}
				if shape.old {
					r.OldValue = r.Value[:len(r.Value)/2]
				}
				payload += len(r.Key) + len(r.Value) + len(r.OldValue)
				rows[i] = r
			}
			bound := SectionBound(len(rows), payload)
			buf := make([]byte, 0, bound)
			h := &formatv1.CommittedFileHeader{TenantId: 1<<64 - 1, RangeId: 1<<64 - 1, OwnerEpoch: 1<<64 - 1,
				PrevWatermark: rows[0].CommitTs - 1, Watermark: ts}
			more := func(int) []byte { panic("the bound was not enough: the writer asked for more") }
			parts, _, err := buildDataFile(h, func(yield func(*Row) error) error {
				for i := range rows {
					if err := yield(&rows[i]); err != nil {
						return err
					}
				}
				return nil
			}, bound, buf, more)
			require.NoError(t, err)
			require.Len(t, parts, 1, "built in the given buffer")
			require.LessOrEqual(t, len(parts[0]), bound)
			require.Equal(t, bound, cap(parts[0]), "built in the given buffer, never grown")
		})
	}
}

func TestNewBufSpare(t *testing.T) {
	require.GreaterOrEqual(t, cap(newBuf(1<<20)), 1<<20+1<<19, "a small section's buffer has half again of room")
	big := 300 << 20
	require.GreaterOrEqual(t, cap(newBuf(big)), big)
	require.LessOrEqual(t, cap(newBuf(big)), sizeClass(big+maxSpare), "a large one at most maxSpare more (and its size class)")
}

// Rounds of rows that compress well (as real rows and the simulator's do)
// are built in the last rounds' buffers: the cache holds a round's section
// buffers, which are sized for the rows uncompressed, not just twice the
// (compressed) bytes published — with that limit every round made new
// buffers for most of its sections. Every row still reads back.
func TestSectionBuffersRecycledWhenRowsCompress(t *testing.T) {
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	split := key(102, 0)
	require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
	g := newGroup(t, store, 1, "g", GroupOptions{SegmentBytes: 1, SegmentAge: 1 << 62, Grace: -1}) // sections recycled at once
	w1, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	w2, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	text := []byte(strings.Repeat("a change data stream of a table, ", 200)) // ~6.6 KB, compresses ~100x
	const perRound, valueLen = 3000, 2000                                    // ~6 MB a range a round
	var all []Row
	ts := uint64(100)
	var made []int
	for round := 0; round < 8; round++ {
		var staged []*Staged
		for i, w := range []*RangeWriter{w1, w2} {
			table := int64(100 + 2*i) // range 1 holds tables below 102, range 2 the rest
			var rows []Row
			for j := 0; j < perRound; j++ {
				off := (j * 7) % (len(text) - valueLen)
				rows = append(rows, Row{CommitTs: ts + uint64(j) + 1, StartTs: ts, Op: formatv1.Op_OP_PUT,
					Key: key(table, int64(round*perRound+j)), Value: text[off : off+valueLen]})
			}
			bytes := 0
			for _, r := range rows {
				bytes += len(r.Key) + len(r.Value)
			}
			s, err := w.Stage(ts+perRound, rowsIn(rows, w.Watermark(), ts+perRound), FlushOptions{Rows: len(rows), SizeHint: bytes})
			require.NoError(t, err)
			staged = append(staged, s)
			all = append(all, rows...)
		}
		_, err := g.Publish(ctx, staged)
		require.NoError(t, err)
		ts += perRound
		made = append(made, g.bufs.made)
	}
	require.Equal(t, made[2], made[len(made)-1], "new section buffers made after the second round (per round: %v)", made)
	require.Positive(t, g.bufs.taken)
	sort.Slice(all, func(i, j int) bool { return Compare(&all[i], &all[j]) < 0 })
	got, resolved := pullAll(t, store, 1, nil, 0)
	require.Equal(t, ts, resolved)
	requireSameRows(t, all, got, "the tenant")
}
