package storefile_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
)

var (
	benchOnce  sync.Once
	benchFiles [][]byte
	benchErr   error
)

// simulatedFiles is 30 simulated seconds at 5,000 rows/s over 3 stores, with
// splits, merges and leader transfers: the reference history.
func simulatedFiles() ([][]byte, error) {
	benchOnce.Do(func() {
		cfg := sim.DefaultConfig()
		cfg.Duration = 30 * time.Second
		store := objstore.NewMemory()
		s, err := sim.New(cfg, sim.Options{Store: store})
		if err != nil {
			benchErr = err
			return
		}
		if _, benchErr = s.Run(context.Background()); benchErr != nil {
			return
		}
		objs, err := objstore.ListAll(context.Background(), store, "data_change_buffer/", "")
		if err != nil {
			benchErr = err
			return
		}
		for _, o := range objs {
			if _, err := layout.ParseStoreFileKey(o.Key); err != nil {
				continue // the schema snapshot
			}
			b, err := store.Get(context.Background(), o.Key)
			if err != nil {
				benchErr = err
				return
			}
			benchFiles = append(benchFiles, b)
		}
	})
	return benchFiles, benchErr
}

// BenchmarkDecode reads every store change file of the reference history
// with the spec'd decoder (framing, checksums, zstd, protobuf, rule checks).
// Run with -cpu 1 for the per-core figure.
func BenchmarkDecode(b *testing.B) {
	files, err := simulatedFiles()
	if err != nil {
		b.Fatal(err)
	}
	var bytes, rows int64
	for _, f := range files {
		bytes += int64(len(f))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows = 0
		stream := storefile.NewStream(nil) // the files are one store's, in order
		for _, f := range files {
			r, err := stream.Open("bench", f)
			if err != nil {
				b.Fatal(err)
			}
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if rec.Event != nil {
					for _, e := range rec.Event.Events {
						rows += int64(len(e.GetEntries().GetEntries()))
					}
				}
			}
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows)/sec, "rows/s")
	b.ReportMetric(float64(bytes)/sec/(1<<20), "MiB/s")
	b.ReportMetric(float64(len(files)), "files")
}
