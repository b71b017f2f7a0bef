// Package simtest runs the simulator in memory for tests and decodes what it
// wrote independently of TiStream's sorter: every store's files in order,
// prewrites matched with commits offline, so tests can compare TiStream's
// output (or the truth) with what upstream really committed.
package simtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/truth"
)

// Run simulates cfg into a memory store and returns it with the truth file.
func Run(t testing.TB, cfg sim.Config) (objstore.Store, []byte, sim.Stats) {
	t.Helper()
	store := objstore.NewMemory()
	var tb bytes.Buffer
	s, err := sim.New(cfg, sim.Options{Store: store, Truth: truth.NewWriter(&tb)})
	require.NoError(t, err)
	st, err := s.Run(context.Background())
	require.NoError(t, err)
	return store, tb.Bytes(), st
}

// Committed is one committed change found in the files (table or meta key).
type Committed struct {
	CommitTs, StartTs uint64
	Delete            bool
	Key, Value        []byte
}

// Visit reads every file of one store in sequence order, as one
// storefile.Stream, and calls fn for each record.
func Visit(t testing.TB, store objstore.Store, cluster, tenant, storeID uint64, fn func(f layout.StoreFileName, r *storefile.Reader, rec storefile.Record)) {
	t.Helper()
	VisitFiles(t, store, cluster, tenant, storeID, nil, fn)
}

// VisitFiles is Visit that also calls onFile (if not nil) when each file is
// opened, before its records: a file may hold no record at all (a store
// that leads nothing, such as one just restarted after a crash).
func VisitFiles(t testing.TB, store objstore.Store, cluster, tenant, storeID uint64, onFile func(f layout.StoreFileName, r *storefile.Reader),
	fn func(f layout.StoreFileName, r *storefile.Reader, rec storefile.Record)) {
	t.Helper()
	ctx := context.Background()
	files, err := objstore.ListAll(ctx, store, layout.StorePrefix(cluster, tenant, storeID), "")
	require.NoError(t, err)
	stream := storefile.NewStream(storefile.BaseFromStore(ctx, store, cluster, tenant, storeID))
	for _, f := range files {
		name, err := layout.ParseStoreFileKey(f.Key)
		require.NoError(t, err)
		b, err := store.Get(ctx, f.Key)
		require.NoError(t, err)
		rd, err := stream.Open(f.Key, b)
		require.NoError(t, err)
		if onFile != nil {
			onFile(name, rd)
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			fn(name, rd, rec)
		}
	}
}

// prewriteRank orders the PREWRITEs of one (key, start_ts) as the spec
// does: by generation, then content (a PUT with an empty value is a lock
// refresh and carries none; a DELETE is content).
func prewriteRank(r *cdcpb.Event_Row) [2]uint64 {
	content := uint64(0)
	if r.OpType == cdcpb.Event_Row_DELETE || len(r.Value) > 0 {
		content = 1
	}
	return [2]uint64{r.Generation, content}
}

// CommittedChanges decodes all files of a tenant and matches prewrites with
// commits, returning every committed change in (commit_ts, start_ts, key)
// order. Of several PREWRITEs of one (key, start_ts) the one of the greatest
// rank (generation, has content) is the value (the spec's rule; equal ranks
// must be the same write), and a commit written more than once (a takeover
// writing events of the crashed leader again) counts once.
func CommittedChanges(t testing.TB, store objstore.Store, cluster, tenant uint64, stores int) []Committed {
	t.Helper()
	prewrites := map[string]*cdcpb.Event_Row{}
	var commits []*cdcpb.Event_Row
	seen := map[string]bool{}
	for s := uint64(1); s <= uint64(stores); s++ {
		Visit(t, store, cluster, tenant, s, func(_ layout.StoreFileName, _ *storefile.Reader, rec storefile.Record) {
			if rec.Event == nil {
				return
			}
			for _, e := range rec.Event.Events {
				for _, row := range e.GetEntries().GetEntries() {
					switch row.Type {
					case cdcpb.Event_PREWRITE:
						k := fmt.Sprintf("%x|%d", row.Key, row.StartTs)
						old, ok := prewrites[k]
						if !ok {
							prewrites[k] = row
							break
						}
						a, b := prewriteRank(old), prewriteRank(row)
						switch {
						case b[0] > a[0] || (b[0] == a[0] && b[1] > a[1]):
							prewrites[k] = row
						case a == b:
							require.True(t, old.OpType == row.OpType && bytes.Equal(old.Value, row.Value),
								"two different PREWRITEs of %x at %d with one rank %v", row.Key, row.StartTs, a)
						}
					case cdcpb.Event_COMMIT, cdcpb.Event_COMMITTED:
						k := fmt.Sprintf("%x|%d|%d", row.Key, row.StartTs, row.CommitTs)
						if !seen[k] {
							seen[k] = true
							commits = append(commits, row)
						}
					}
				}
			}
		})
	}
	out := make([]Committed, 0, len(commits))
	for _, c := range commits {
		v := Committed{CommitTs: c.CommitTs, StartTs: c.StartTs, Delete: c.OpType == cdcpb.Event_Row_DELETE, Key: c.Key, Value: c.Value}
		if c.Type == cdcpb.Event_COMMIT {
			p, ok := prewrites[fmt.Sprintf("%x|%d", c.Key, c.StartTs)]
			require.True(t, ok, "commit of %x at %d has no prewrite anywhere", c.Key, c.CommitTs)
			v.Value = p.Value
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CommitTs != b.CommitTs {
			return a.CommitTs < b.CommitTs
		}
		if a.StartTs != b.StartTs {
			return a.StartTs < b.StartTs
		}
		return bytes.Compare(a.Key, b.Key) < 0
	})
	return out
}
