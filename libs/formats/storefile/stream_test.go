package storefile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// producer writes one store's stream in format version 2 with Leaders: a
// region is led or not, leads change between files at random.
type producer struct {
	t       testing.TB
	leaders *Leaders
	led     map[uint64]*formatv1.RegionIncarnation
	term    map[uint64]uint64
	seq     uint64
	files   [][]byte
	heads   []*formatv1.StoreFileHeader
	rng     *rand.Rand
}

func newProducer(t testing.TB, fullEvery uint64, seed uint64) *producer {
	return &producer{t: t, leaders: NewLeaders(fullEvery), led: map[uint64]*formatv1.RegionIncarnation{},
		term: map[uint64]uint64{}, rng: rand.New(rand.NewPCG(seed, 1))}
}

// file cuts the next file: some regions start (a new term), some end, then
// a LeaderResolvedTs excepting a few.
func (p *producer) file(changes int) {
	p.seq++
	h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 1, StoreId: 3, Seq: p.seq, MaxTs: 1000 * p.seq}
	if p.seq > 1 {
		h.PrevMaxTs = 1000 * (p.seq - 1)
	}
	p.leaders.Header(h)
	w, err := NewWriter(h)
	require.NoError(p.t, err)
	for range changes {
		id := uint64(1 + p.rng.IntN(40))
		if old, ok := p.led[id]; ok {
			require.NoError(p.t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END,
				Reason: formatv1.RegionChange_REASON_LEADER_TRANSFER, Incarnation: old}))
			delete(p.led, id)
			p.leaders.End(id)
			continue
		}
		p.term[id] += 1 + uint64(p.rng.IntN(2))
		ri := inc(p.t, region(id, 1, fmt.Sprintf("k%03d", id), fmt.Sprintf("k%03d~", id)), p.term[id])
		require.NoError(p.t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
			Reason: formatv1.RegionChange_REASON_LEADER_TRANSFER, Incarnation: ri,
			Predecessors: []*formatv1.IncarnationRef{{RegionId: id, Version: 1, Term: 1}}}))
		p.led[id] = ri
		p.leaders.Start(id, ri)
	}
	var except []uint64
	for id := range p.led {
		if p.rng.IntN(5) == 0 {
			except = append(except, id)
		}
	}
	slices.Sort(except)
	require.NoError(p.t, w.AddLeaderResolved(&formatv1.LeaderResolvedTs{Ts: h.MaxTs - 1, ExceptRegions: except}))
	b, err := w.Finish()
	require.NoError(p.t, err)
	p.leaders.Opened(h)
	p.files = append(p.files, b)
	p.heads = append(p.heads, h)
}

// restart: the store lost everything it led (a crash).
func (p *producer) restart() {
	clear(p.led)
	p.leaders.Restart()
}

func (p *producer) loader() BaseLoader {
	return func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error) {
		if seq == 0 || seq > uint64(len(p.heads)) || p.heads[seq-1].MaxTs != maxTs {
			return nil, objstore.ErrNotFound
		}
		return p.heads[seq-1], nil
	}
}

func key(seq uint64) string { return layout.StoreFileKey(1, 1, 3, seq, 1000*seq) }

// readThrough reads a file to its end and returns the leaders at its end.
func readThrough(t testing.TB, r *Reader) map[uint64]Ref {
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	out := map[uint64]Ref{}
	r.EachLeader(func(inc Incarnation) { out[inc.Region.Id] = inc.ref() })
	return out
}

// TestStreamDeltaHeaders: a stream written with Leaders (a full list every
// 3 files, deltas between, a restart) reads whole with one Stream, and a
// Stream started at any file (through its base's header) has exactly the
// leaders the whole read has there.
func TestStreamDeltaHeaders(t *testing.T) {
	p := newProducer(t, 3, 1)
	for i := range 14 {
		if i == 8 {
			p.restart()
		}
		p.file(1 + i%5)
	}
	whole := NewStream(nil)
	var atStart []map[uint64]Ref
	var deltas, full int
	for i, b := range p.files {
		r, err := whole.Open(key(uint64(i+1)), b)
		require.NoError(t, err)
		require.Equal(t, i == 0, r.Fresh())
		if r.Header().LeaderBaseSeq != 0 {
			deltas++
		} else {
			full++
		}
		if i == 8 {
			require.True(t, r.FullList(), "a restarted store's first file lists in full")
			require.NotEmpty(t, r.Dropped(), "the restart dropped what the store led")
		}
		start := map[uint64]Ref{}
		r.EachLeader(func(inc Incarnation) { start[inc.Region.Id] = inc.ref() })
		atStart = append(atStart, start)
		readThrough(t, r)
	}
	require.Greater(t, deltas, 3)
	require.Greater(t, full, 3)
	for i, b := range p.files {
		s := NewStream(p.loader())
		r, err := s.Open(key(uint64(i+1)), b)
		require.NoError(t, err, "file %d", i+1)
		require.True(t, r.Fresh())
		got := map[uint64]Ref{}
		r.EachLeader(func(inc Incarnation) { got[inc.Region.Id] = inc.ref() })
		require.Equal(t, atStart[i], got, "file %d: leaders when it opens", i+1)
		readThrough(t, r)
		if i+1 < len(p.files) {
			_, err := s.Open(key(uint64(i+2)), p.files[i+1])
			require.NoError(t, err, "file %d continues from a fresh start at %d", i+2, i+1)
		}
	}
	// Without a loader, a delta header cannot start a stream.
	for i, h := range p.heads {
		if h.LeaderBaseSeq != 0 {
			_, err := Open(key(uint64(i+1)), p.files[i])
			require.ErrorIs(t, err, ErrNeedBase)
			require.False(t, errors.Is(err, container.ErrCorrupt))
			break
		}
	}
}

// rewriteHeader rebuilds file b with edit applied to its header.
func rewriteHeader(t testing.TB, b []byte, edit func(h *formatv1.StoreFileHeader)) []byte {
	c, err := container.Open("x", b, container.KindStoreChange)
	require.NoError(t, err)
	h := &formatv1.StoreFileHeader{}
	require.NoError(t, c.NextMessage(h))
	edit(h)
	w := container.NewWriter(container.KindStoreChange, container.Options{})
	require.NoError(t, w.AppendMessage(h))
	for {
		rec, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, w.Append(rec))
	}
	out, err := w.Finish()
	require.NoError(t, err)
	return out
}

// TestStreamRefusesWrongLists: a header whose leader list disagrees with
// what the stream's records add up to is a corrupt file naming the region;
// a base that cannot be read is not (the file may be fine).
func TestStreamRefusesWrongLists(t *testing.T) {
	p := newProducer(t, 4, 2)
	for range 6 {
		p.file(3)
	}
	deltaAt := -1
	for i, h := range p.heads {
		if h.LeaderBaseSeq != 0 && len(h.LeaderAdded) > 0 {
			deltaAt = i
			break
		}
	}
	require.GreaterOrEqual(t, deltaAt, 1)
	readUpTo := func(s *Stream, n int) {
		for i := range n {
			r, err := s.Open(key(uint64(i+1)), p.files[i])
			require.NoError(t, err)
			readThrough(t, r)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(h *formatv1.StoreFileHeader)
		want string
	}{
		{"an addition the records do not make", func(h *formatv1.StoreFileHeader) {
			h.LeaderAdded = append(h.LeaderAdded, inc(t, region(99, 1, "z", "zz"), 3))
		}, "region 99"},
		{"a missing addition", func(h *formatv1.StoreFileHeader) { h.LeaderAdded = h.LeaderAdded[1:] }, "the header lists region"},
		{"another term", func(h *formatv1.StoreFileHeader) {
			ref, err := peekRef(h.LeaderAdded[0])
			require.NoError(t, err)
			h.LeaderAdded[0] = inc(t, region(ref.RegionID, 1, fmt.Sprintf("k%03d", ref.RegionID), fmt.Sprintf("k%03d~", ref.RegionID)), ref.Term+7)
		}, "version 1 term"},
		{"a removal the records do not make", func(h *formatv1.StoreFileHeader) { h.LeaderRemoved = append(h.LeaderRemoved, 98) }, "region 98"},
		{"an older base", func(h *formatv1.StoreFileHeader) { h.LeaderBaseSeq-- }, "the stream's last full leader list is in file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(p.loader())
			readUpTo(s, deltaAt)
			bad := rewriteHeader(t, p.files[deltaAt], tc.edit)
			_, err := s.Open(key(uint64(deltaAt+1)), bad)
			require.ErrorIs(t, err, container.ErrCorrupt)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("a full list naming what the stream does not lead", func(t *testing.T) {
		s := NewStream(nil)
		readUpTo(s, deltaAt)
		h := p.heads[deltaAt]
		bad := rewriteHeader(t, p.files[deltaAt], func(h2 *formatv1.StoreFileHeader) {
			h2.LeaderBaseSeq, h2.LeaderBaseMaxTs, h2.LeaderAdded, h2.LeaderRemoved = 0, 0, nil, nil
			h2.LeaderRegions = []*formatv1.RegionIncarnation{inc(t, region(97, 1, "y", "yy"), 5)}
		})
		_, err := s.Open(key(h.Seq), bad)
		var mm *LeaderMismatchError
		require.ErrorAs(t, err, &mm)
		require.Equal(t, uint64(97), mm.Region)
	})
	t.Run("the base cannot be read", func(t *testing.T) {
		s := NewStream(func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error) {
			return nil, errors.New("503 slow down")
		})
		_, err := s.Open(key(uint64(deltaAt+1)), p.files[deltaAt])
		require.ErrorIs(t, err, ErrBaseLoad)
		require.False(t, errors.Is(err, container.ErrCorrupt))
	})
	t.Run("the base is not the file named", func(t *testing.T) {
		s := NewStream(func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error) {
			return p.heads[deltaAt], nil // a delta header, not the base
		})
		_, err := s.Open(key(uint64(deltaAt+1)), p.files[deltaAt])
		require.ErrorIs(t, err, container.ErrCorrupt)
		require.ErrorContains(t, err, "the base header is of")
	})
}

// TestVersion2HeaderRules: what a header alone must obey.
func TestVersion2HeaderRules(t *testing.T) {
	ri := inc(t, region(10, 5, "a", "m"), 2)
	for _, tc := range []struct {
		name string
		h    *formatv1.StoreFileHeader
		want string
	}{
		{"a newer version", &formatv1.StoreFileHeader{FormatVersion: 3}, "format version 3 is newer"},
		{"a delta in version 1", &formatv1.StoreFileHeader{LeaderBaseSeq: 2}, "in a format version 1 header"},
		{"delta fields without a base", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderRemoved: []uint64{4}}, "without leader_base_seq"},
		{"a base not below seq", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 7}, "not below seq"},
		{"a base after prev_max_ts", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 2, LeaderBaseMaxTs: 200}, "above prev_max_ts"},
		{"a delta with a full list", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 2, LeaderRegions: []*formatv1.RegionIncarnation{ri}}, "with leader_regions"},
		{"added and removed", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 2, LeaderAdded: []*formatv1.RegionIncarnation{ri}, LeaderRemoved: []uint64{10}}, "also added"},
		{"added twice", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 2, LeaderAdded: []*formatv1.RegionIncarnation{ri, ri}}, "listed twice"},
		{"a bad addition", &formatv1.StoreFileHeader{FormatVersion: 2, LeaderBaseSeq: 2, LeaderAdded: []*formatv1.RegionIncarnation{{Region: []byte{0xff}, Term: 1}}}, "metapb.Region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.ClusterId, h.TenantId, h.StoreId, h.Seq, h.PrevMaxTs, h.MaxTs = 1, 2, 3, 7, 100, 1000
			_, err := NewWriter(h)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestLeaderResolvedRules: a LeaderResolvedTs is a version 2 record, at or
// below max_ts, never below the stream's previous one, and excepts only led
// regions, once each.
func TestLeaderResolvedRules(t *testing.T) {
	start := item{rc: &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_BOOTSTRAP,
		Incarnation: inc(t, region(10, 5, "a", "m"), 2)}}
	file := func(version uint32, lrs ...*formatv1.LeaderResolvedTs) []byte {
		h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 1, StoreId: 3, Seq: 1, MaxTs: 1000, FormatVersion: version}
		w, err := NewWriter(h)
		require.NoError(t, err)
		require.NoError(t, w.AddRegionChange(start.rc))
		for _, lr := range lrs {
			require.NoError(t, w.AddLeaderResolved(lr))
		}
		b, err := w.Finish()
		require.NoError(t, err)
		return b
	}
	recs, err := readAll("ok", file(2, &formatv1.LeaderResolvedTs{Ts: 500}, &formatv1.LeaderResolvedTs{Ts: 600, ExceptRegions: []uint64{10}}))
	require.NoError(t, err)
	require.Equal(t, uint64(600), recs[2].LeaderResolved.Ts)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"in version 1", file(0, &formatv1.LeaderResolvedTs{Ts: 500}), "format version 1 file"},
		{"above max_ts", file(2, &formatv1.LeaderResolvedTs{Ts: 1001}), "above the file's max_ts"},
		{"backwards", file(2, &formatv1.LeaderResolvedTs{Ts: 600}, &formatv1.LeaderResolvedTs{Ts: 500}), "below the stream's previous one"},
		{"a region not led", file(2, &formatv1.LeaderResolvedTs{Ts: 500, ExceptRegions: []uint64{11}}), "region 11, which the store does not lead"},
		{"twice", file(2, &formatv1.LeaderResolvedTs{Ts: 500, ExceptRegions: []uint64{10, 10}}), "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll("bad", tc.b)
			require.ErrorIs(t, err, container.ErrCorrupt)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// countingStore counts ranged reads.
type countingStore struct {
	objstore.Store
	ranged int
	bytes  int64
}

func (s *countingStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.ranged++
	b, err := s.Store.GetRange(ctx, key, off, n)
	s.bytes += int64(len(b))
	return b, err
}

// TestReadHeaderRanged: a base header costs one ranged read of the file's
// first block, two when the block is larger than the first probe, never
// the whole file; a file cut inside its first block is corrupt.
func TestReadHeaderRanged(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: objstore.NewMemory()}
	small := build(t, header(t), item{ev: resolvedEvent(300, 10)})
	var list []*formatv1.RegionIncarnation
	rng := rand.New(rand.NewPCG(1, 2))
	for id := uint64(1); id <= 3000; id++ { // keys zstd cannot squeeze into the first probe
		k := fmt.Sprintf("r%016x%016x", rng.Uint64(), rng.Uint64())
		list = append(list, inc(t, region(id, 5, k, k+"~"), 2))
	}
	h := header(t)
	h.LeaderRegions = list
	big := build(t, h, item{ev: resolvedEvent(300, 10)})
	require.NoError(t, store.Put(ctx, "small", small))
	require.NoError(t, store.Put(ctx, "big", big))

	got, err := ReadHeader(ctx, store, "small")
	require.NoError(t, err)
	require.Equal(t, uint64(7), got.Seq)
	require.Equal(t, 1, store.ranged)

	store.ranged, store.bytes = 0, 0
	got, err = ReadHeader(ctx, store, "big")
	require.NoError(t, err)
	require.Len(t, got.LeaderRegions, 3000)
	require.Equal(t, 2, store.ranged)

	require.NoError(t, store.Put(ctx, "cut", big[:headerProbe+100]))
	_, err = ReadHeader(ctx, store, "cut")
	require.ErrorIs(t, err, container.ErrCorrupt)
	_, err = ReadHeader(ctx, store, "missing")
	require.ErrorIs(t, err, objstore.ErrNotFound)
}

// FuzzStream reads two files of one stream: a base and a file after it
// whose header (fuzzed) may be a delta against it, with fuzzed records;
// once as a continuing stream, once starting at the second file through
// the base loader. Errors must be corrupt-file errors (or ErrBaseLoad for
// a base that is not there), never a panic.
func FuzzStream(f *testing.F) {
	p := newProducer(f, 3, 4)
	for range 3 {
		p.file(3)
	}
	recOf := func(b []byte) (hdr, rec []byte) {
		c, err := container.Open("seed", b, container.KindStoreChange)
		require.NoError(f, err)
		hdr, err = c.Next()
		require.NoError(f, err)
		hdr = slices.Clone(hdr)
		rec, err = c.Next()
		require.NoError(f, err)
		return hdr, slices.Clone(rec)
	}
	h1, r1 := recOf(p.files[1])
	h2, r2 := recOf(p.files[2])
	f.Add(h1, r1, h2, r2)
	f.Fuzz(func(t *testing.T, hdr1, rec1, hdr2, rec2 []byte) {
		wrap := func(hdr, rec []byte) []byte {
			w := container.NewWriter(container.KindStoreChange, container.Options{})
			if w.Append(hdr) != nil || w.Append(rec) != nil {
				return nil
			}
			b, _ := w.Finish()
			return b
		}
		f1, f2 := wrap(hdr1, rec1), wrap(hdr2, rec2)
		if f1 == nil || f2 == nil {
			return
		}
		base, berr := ParseHeader("base", f1)
		load := func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error) {
			if berr != nil {
				return nil, berr
			}
			return base, nil
		}
		ok := func(err error) {
			if err != nil && !errors.Is(err, container.ErrCorrupt) && !errors.Is(err, ErrBaseLoad) {
				t.Fatalf("error is not a corrupt-file error: %v", err)
			}
		}
		s := NewStream(load)
		for _, b := range [][]byte{f1, f2} {
			r, err := s.Open("f", b)
			ok(err)
			if err != nil {
				break
			}
			for {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				ok(err)
				if err != nil {
					break
				}
			}
		}
		r, err := NewStream(load).Open("f2", f2)
		ok(err)
		if err == nil {
			for {
				_, err := r.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						ok(err)
					}
					break
				}
			}
		}
	})
}
