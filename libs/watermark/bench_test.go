package watermark

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchRegions is TiCDC's DB-sorter scenario: 270,000 regions in one range.
const benchRegions = 270_000

// recordKey returns the raw TiDB record key t{table}_r{handle} (19 bytes),
// the shape of most region boundaries.
func recordKey(table, handle int64) []byte {
	b := make([]byte, 0, 19)
	b = append(b, 't')
	b = binary.BigEndian.AppendUint64(b, uint64(table)^1<<63)
	b = append(b, '_', 'r')
	return binary.BigEndian.AppendUint64(b, uint64(handle)^1<<63)
}

// gridKey is the g-th of increasing boundary keys, 400 per table.
func gridKey(g int) []byte { return recordKey(int64(1000+g/400), int64(g%400)*1000) }

// buildBench starts n bootstrap incarnations over consecutive grid ranges of
// width w and gives each a resolved ts.
func buildBench(n, w int) (*Map, []Ref) {
	m, err := New(gridKey(0), gridKey(n*w))
	if err != nil {
		panic(err)
	}
	refs := make([]Ref, n)
	for i := range n {
		refs[i] = Ref{RegionID: uint64(i + 1), Version: 1, Term: 5}
		m.Start(refs[i], gridKey(i*w), gridKey((i+1)*w), nil)
		m.Resolved(refs[i], 1000)
	}
	return m, refs
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkBuild270k: the cost of starting 270,000 regions, and the memory
// the map holds for them (heap in use after GC, before and after).
func BenchmarkBuild270k(b *testing.B) {
	var bytes uint64
	for b.Loop() {
		b.StopTimer()
		before := heapAlloc()
		b.StartTimer()
		m, _ := buildBench(benchRegions, 1)
		b.StopTimer()
		bytes = heapAlloc() - before
		runtime.KeepAlive(m)
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/benchRegions, "B/region")
	b.ReportMetric(float64(bytes)/(1<<20), "MiB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRegions, "ns/region")
}

// BenchmarkResolved270k: a resolved ts for a random incarnation of 270,000,
// then the watermark.
func BenchmarkResolved270k(b *testing.B) {
	m, refs := buildBench(benchRegions, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	ts := uint64(1000)
	var w uint64
	for b.Loop() {
		ts++
		m.Resolved(refs[rng.IntN(len(refs))], ts)
		w = m.Watermark()
	}
	runtime.KeepAlive(w)
}

// BenchmarkWatermark270k: reading the watermark alone.
func BenchmarkWatermark270k(b *testing.B) {
	m, _ := buildBench(benchRegions, 1)
	var w uint64
	for b.Loop() {
		w = m.Watermark()
	}
	runtime.KeepAlive(w)
}

// churn is a model of 270,000 regions over a key grid for the churn
// benchmark: at[g] is the region over grid key g.
type churn struct {
	m      *Map
	at     []*bregion
	rng    *rand.Rand
	ts     uint64
	nextID uint64
}

type bregion struct {
	ref    Ref
	lo, hi int
}

func (c *churn) place(r *bregion) {
	for g := r.lo; g < r.hi; g++ {
		c.at[g] = r
	}
}

func (c *churn) start(r *bregion, preds ...Ref) {
	c.m.Start(r.ref, gridKey(r.lo), gridKey(r.hi), preds)
	c.ts++
	c.m.Resolved(r.ref, c.ts)
	c.place(r)
}

func (c *churn) end(r *bregion) { c.m.End(r.ref, c.ts) }

// step makes one region change: a split at a random key, a merge with the
// right neighbour (keeping regions at most 16 keys wide), or a leader
// transfer whose new leader's stream is read first.
func (c *churn) step() {
	for {
		g := c.rng.IntN(len(c.at))
		r := c.at[g]
		switch c.rng.IntN(3) {
		case 0:
			if g == r.lo {
				continue
			}
			c.end(r)
			left := &bregion{ref: Ref{c.nextID, r.ref.Version + 1, 5}, lo: r.lo, hi: g}
			c.nextID++
			right := &bregion{ref: Ref{r.ref.RegionID, r.ref.Version + 1, r.ref.Term}, lo: g, hi: r.hi}
			c.start(left, r.ref)
			c.start(right, r.ref)
		case 1:
			if r.hi == len(c.at) || c.at[r.hi].hi-r.lo > 16 {
				continue
			}
			n := c.at[r.hi]
			c.end(r)
			c.end(n)
			v := max(r.ref.Version, n.ref.Version) + 1
			c.start(&bregion{ref: Ref{n.ref.RegionID, v, n.ref.Term}, lo: r.lo, hi: n.hi}, r.ref, n.ref)
		default:
			n := &bregion{ref: Ref{r.ref.RegionID, r.ref.Version, r.ref.Term + 1}, lo: r.lo, hi: r.hi}
			c.start(n, r.ref) // pending: the old leader's END is not read yet
			c.end(r)
		}
		return
	}
}

// BenchmarkChurn270k: one split, merge or leader transfer (END, STARTs and
// a resolved ts each) on a map of about 270,000 regions.
func BenchmarkChurn270k(b *testing.B) {
	const width = 4
	m, refs := buildBench(benchRegions, width)
	c := &churn{m: m, at: make([]*bregion, benchRegions*width), rng: rand.New(rand.NewPCG(3, 4)),
		ts: 1000, nextID: benchRegions + 1}
	for i, r := range refs {
		c.place(&bregion{ref: r, lo: i * width, hi: (i + 1) * width})
	}
	for b.Loop() {
		c.step()
	}
	st := m.Stats()
	b.ReportMetric(float64(st.Incarnations), "regions")
	b.ReportMetric(float64(st.Entries), "entries")
	b.ReportMetric(float64(st.Pending), "pending")
}

// buildStore is buildBench with every incarnation led by store 1, resolved
// by one LeaderResolvedTs.
func buildStore(n int) (*Map, []Ref) {
	m, err := New(gridKey(0), gridKey(n))
	if err != nil {
		panic(err)
	}
	refs := make([]Ref, n)
	for i := range n {
		refs[i] = Ref{RegionID: uint64(i + 1), Version: 1, Term: 5}
		m.StartFrom(1, refs[i], gridKey(i), gridKey(i+1), nil)
	}
	m.LeaderResolvedFrom(1, 1000, nil)
	return m, refs
}

// BenchmarkRoundPerRegion270k: one store's round of resolved ts the version
// 1 way: every one of 270,000 incarnations named, then the watermark.
func BenchmarkRoundPerRegion270k(b *testing.B) {
	m, refs := buildStore(benchRegions)
	ts := uint64(1000)
	for b.Loop() {
		ts++
		for _, r := range refs {
			m.ResolvedFrom(1, r, ts)
		}
		_ = m.Watermark()
	}
}

// BenchmarkRoundLeaderResolved270k: the same round as one LeaderResolvedTs
// (store file format version 2) excepting 100 incarnations that hold locks
// (a different 100 each round, so they leave and rejoin the group), with
// their own ts.
func BenchmarkRoundLeaderResolved270k(b *testing.B) {
	m, refs := buildStore(benchRegions)
	rng := rand.New(rand.NewPCG(1, 2))
	ts := uint64(1000)
	except := make([]Ref, 100)
	for b.Loop() {
		ts++
		for i := range except {
			except[i] = refs[rng.IntN(len(refs))]
		}
		m.LeaderResolvedFrom(1, ts, except)
		for _, r := range except {
			m.ResolvedFrom(1, r, ts-1)
		}
		_ = m.Watermark()
	}
}

// BenchmarkLeaders270k: a store's full leader list of 270,000 incarnations
// that drops none (the common case: the periodic full list).
func BenchmarkLeaders270k(b *testing.B) {
	m, refs := buildStore(benchRegions)
	for b.Loop() {
		m.LeadersFrom(1, refs)
	}
}
