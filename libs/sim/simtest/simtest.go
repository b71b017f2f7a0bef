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

// Visit reads every file of one store in sequence order and calls fn for
// each record.
func Visit(t testing.TB, store objstore.Store, cluster, tenant, storeID uint64, fn func(f layout.StoreFileName, r *storefile.Reader, rec storefile.Record)) {
	t.Helper()
	ctx := context.Background()
	files, err := objstore.ListAll(ctx, store, layout.StorePrefix(cluster, tenant, storeID), "")
	require.NoError(t, err)
	for _, f := range files {
		name, err := layout.ParseStoreFileKey(f.Key)
		require.NoError(t, err)
		b, err := store.Get(ctx, f.Key)
		require.NoError(t, err)
		rd, err := storefile.Open(f.Key, b)
		require.NoError(t, err)
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

// CommittedChanges decodes all files of a tenant and matches prewrites with
// commits, returning every committed change in (commit_ts, start_ts, key) order.
func CommittedChanges(t testing.TB, store objstore.Store, cluster, tenant uint64, stores int) []Committed {
	t.Helper()
	prewrites := map[string]*cdcpb.Event_Row{}
	var commits []*cdcpb.Event_Row
	for s := uint64(1); s <= uint64(stores); s++ {
		Visit(t, store, cluster, tenant, s, func(_ layout.StoreFileName, _ *storefile.Reader, rec storefile.Record) {
			if rec.Event == nil {
				return
			}
			for _, e := range rec.Event.Events {
				for _, row := range e.GetEntries().GetEntries() {
					switch row.Type {
					case cdcpb.Event_PREWRITE:
						prewrites[fmt.Sprintf("%x|%d", row.Key, row.StartTs)] = row
					case cdcpb.Event_COMMIT, cdcpb.Event_COMMITTED:
						commits = append(commits, row)
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
