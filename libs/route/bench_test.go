package route_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sim"
)

// benchStores are 5 simulated seconds of a 3-store cluster with 300,000
// regions (about 100,000 led by store 1) at 5,000 rows/s: format version 1
// as the simulator writes it, and its store 1 transcoded to format version 2
// with delta headers but resolved ts still naming every region ("2-headers":
// what fixing the header alone gives) and with LeaderResolvedTs ("2").
var benchStores = sync.OnceValues(func() (map[string]objstore.Store, error) {
	cfg := sim.DefaultConfig()
	cfg.Duration = 5 * time.Second
	cfg.Tables, cfg.Regions = 30_000, 300_000
	cfg.FormatVersion = 1
	v1 := objstore.NewMemory()
	s, err := sim.New(cfg, sim.Options{Store: v1})
	if err != nil {
		return nil, err
	}
	if _, err := s.Run(context.Background()); err != nil {
		return nil, err
	}
	return map[string]objstore.Store{"1": v1}, nil
})

// BenchmarkRouteSteadyFiles// BenchmarkRouteSteadyFiles routes a store's files after its first two
// (the bootstrap STARTs and the first full leader list, not timed): what a
// file costs a dispatcher or a replay while the store leads about 100,000
// regions, in format version 1 (every header lists every region, every
// resolved ts record names them) and 2 (delta headers, LeaderResolvedTs).
func BenchmarkRouteSteadyFiles(b *testing.B) {
	tb := ranges(b)
	stores, err := benchStores()
	if err != nil {
		b.Fatal(err)
	}
	if stores["2"] == nil {
		stores["2-headers"], stores["2"] = objstore.NewMemory(), objstore.NewMemory()
		transcode(b, stores["1"], stores["2-headers"], 1, 60, false)
		transcode(b, stores["1"], stores["2"], 1, 60, true)
	}
	for _, v := range []string{"1", "2-headers", "2"} {
		b.Run("format"+v, func(b *testing.B) {
			keys := storeKeys(b, stores[v], 1)
			files := make([][]byte, len(keys))
			var bytes int
			for i, k := range keys {
				if files[i], err = stores[v].Get(context.Background(), k); err != nil {
					b.Fatal(err)
				}
				if i >= 2 {
					bytes += len(files[i])
				}
			}
			for b.Loop() {
				b.StopTimer()
				rt := route.NewRouter(tb)
				for i := range 2 {
					if _, _, err := rt.Route(keys[i], files[i]); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				for i := 2; i < len(files); i++ {
					if _, _, err := rt.Route(keys[i], files[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			n := float64(len(files) - 2)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n/1e6, "ms/file")
			b.ReportMetric(float64(bytes)/n/1024, "KiB/file")
		})
	}
}
