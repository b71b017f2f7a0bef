package pool

import (
	"math/rand/v2"
	"testing"

	"github.com/tistream/tistream/libs/objstore"
)

// BenchmarkSmallRounds publishes rounds of small sections, as a sorter
// with a short flush interval and a modest input does: the default
// segment options cut a segment every 4 MiB of sections. Reports the Go
// heap bytes and allocations per round (`go test -bench SmallRounds
// -benchmem ./libs/pool`).
func BenchmarkSmallRounds(b *testing.B) {
	store := objstore.NewMemory()
	g, err := NewGroupWriter(store, 1, "bench", "sorter-bench", GroupOptions{Grace: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const ranges = 16
	var ws []*RangeWriter
	for id := uint64(1); id <= ranges; id++ {
		w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: id, OpenedAt: 100}, 1)
		if err != nil {
			b.Fatal(err)
		}
		ws = append(ws, w)
	}
	rows := make([][]Row, ranges)
	for i := range rows {
		rows[i] = genRows(rng, 100, []int64{int64(100 + i)}, 100)
		for j := range rows[i] {
			v := make([]byte, 200)
			for k := range v {
				v[k] = byte(rng.Uint32())
			}
			rows[i][j].Value = v
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		base := uint64(n) << 32
		var staged []*Staged
		for i, w := range ws {
			src := rows[i]
			s, err := w.Stage(base+1<<32, func(yield func(*Row) error) error {
				for j := range src {
					r := src[j]
					r.CommitTs += base
					if err := yield(&r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			staged = append(staged, s)
		}
		if _, err := g.Publish(ctx, staged); err != nil {
			b.Fatal(err)
		}
	}
	g.WaitSegments()
}
