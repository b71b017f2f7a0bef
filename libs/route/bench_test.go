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
	v1, err := simulate(cfg)
	if err != nil {
		return nil, err
	}
	return map[string]objstore.Store{"1": v1}, nil
})

// simulate runs the simulator with cfg into a new in-memory store.
func simulate(cfg sim.Config) (objstore.Store, error) {
	st := objstore.NewMemory()
	s, err := sim.New(cfg, sim.Options{Store: st})
	if err != nil {
		return nil, err
	}
	if _, err := s.Run(context.Background()); err != nil {
		return nil, err
	}
	return st, nil
}

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

// busyStore is 10 simulated seconds of the simulator's default cluster (3
// stores, 16 regions over 8 tables) at 10,000 rows/s: few regions with many
// rows each, the shape `tistream lag --backlog-rows` drains.
var busyStore = sync.OnceValues(func() (objstore.Store, error) {
	cfg := sim.DefaultConfig()
	cfg.Duration = 10 * time.Second
	cfg.RowsPerSec = 10_000
	return simulate(cfg)
})

// BenchmarkRouteBusyFiles routes every file of store 1 of busyStore into
// the four ranges: the dispatcher's cost per row event when regions are
// few and busy.
func BenchmarkRouteBusyFiles(b *testing.B) {
	tb := ranges(b)
	st, err := busyStore()
	if err != nil {
		b.Fatal(err)
	}
	keys := storeKeys(b, st, 1)
	files := make([][]byte, len(keys))
	for i, k := range keys {
		if files[i], err = st.Get(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
	events := 0
	for b.Loop() {
		rt := route.NewRouter(tb)
		events = 0
		for i := range files {
			batches, _, err := rt.Route(keys[i], files[i])
			if err != nil {
				b.Fatal(err)
			}
			for _, bt := range batches {
				events += len(bt.Events)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(events), "ns/event")
	b.ReportMetric(float64(events), "events/op")
}
