package apiserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/verify"
)

// groupHeads returns the newest seq of each of a tenant's groups in the
// pool (publications and segments).
func groupHeads(t *testing.T, pl objstore.Store, tenant uint64) map[string]uint64 {
	t.Helper()
	all, err := objstore.ListAll(context.Background(), pl, layout.GroupsPrefix(tenant), "")
	require.NoError(t, err)
	heads := map[string]uint64{}
	for _, o := range all {
		group, rest, _ := strings.Cut(strings.TrimPrefix(o.Key, layout.GroupsPrefix(tenant)), "/")
		var seq uint64
		switch {
		case strings.HasPrefix(rest, "pub/"):
			seq, err = layout.ParseGroupSeqKey(o.Key)
		case strings.HasPrefix(rest, "seg/"):
			seq, _, err = layout.ParseGroupSegKey(o.Key)
		default:
			continue
		}
		require.NoError(t, err)
		heads[group] = max(heads[group], seq)
	}
	require.NotEmpty(t, heads)
	return heads
}

// aboveHeads wraps pl counting, in reg, every request on a publication
// above its group's newest (purpose "above").
func aboveHeads(pl objstore.Store, reg prometheus.Registerer, heads map[string]uint64) objstore.Store {
	return metered.NewMetrics(reg).Wrap(pl, "api-server", func(key string) (string, string) {
		group, rest, _ := strings.Cut(strings.TrimPrefix(key, layout.GroupsPrefix(1)), "/")
		if top, ok := heads[group]; ok && strings.HasPrefix(rest, "pub/") {
			if seq, err := layout.ParseGroupSeqKey(key); err == nil && seq > top {
				return "above", ""
			}
		}
		return "other", ""
	})
}

// TestNoticesStopProbing: a tenant pull of a complete pool. With the
// publication notices naming each group's newest publication (as the
// sorters put them), the pull reads every row (checked against the truth)
// and never GETs a publication above an announced one; without them (no
// etcd: polling every 20 ms) it does, again and again.
func TestNoticesStopProbing(t *testing.T) {
	f := history(t)
	heads := groupHeads(t, f.pool, 1)
	for _, notices := range []bool{true, false} {
		t.Run(map[bool]string{true: "notices", false: "polling"}[notices], func(t *testing.T) {
			e := startRegistry(t, f, f.pool)
			counted := prometheus.NewRegistry()
			reads := aboveHeads(f.pool, counted, heads)
			var s *server
			if notices {
				s = startServerEtcd(t, reads, e.schema, e.cli, func(c *Config) { c.FallbackPollInterval = time.Hour })
				eventually(t, "the notice watch", s.svc.wake.Live)
				for group, seq := range heads {
					_, err := e.cli.Put(context.Background(), etcdx.PublishedKey(1, "sorter-"+group), etcdx.NoticeValue(group, seq))
					require.NoError(t, err)
				}
				eventually(t, "the api-server to take the notices", func() bool {
					for group, seq := range heads {
						if got, ok := s.svc.heads.Newest(1, group); !ok || got != seq {
							return false
						}
					}
					return true
				})
			} else {
				s = startServer(t, reads, e.schema)
			}
			tenant := uint64(1)
			recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: tenant, start: f.snapTs[tenant]})
			require.NoError(t, err)
			p := collect(t, recv, tenant, f.final)
			check(t, f, p, verify.Options{Tenant: &tenant, From: f.snapTs[tenant]})
			// Caught up: a few more rounds (each a notice, or a poll).
			for i := range 3 {
				wakes := s.counter(t, "tistream_apiserver_pull_wakes_total")
				if notices {
					_, err := e.cli.Put(context.Background(), etcdx.PublishedKey(1, "sorter-other"), etcdx.NoticeValue("other", uint64(i+1)))
					require.NoError(t, err)
				}
				eventually(t, "the pull to wake", func() bool { return s.counter(t, "tistream_apiserver_pull_wakes_total") > wakes })
			}
			above := 0.0
			requests, _, err := metered.Gather(counted)
			require.NoError(t, err)
			for _, r := range requests {
				if r.Purpose == "above" {
					above += r.Value
				}
			}
			skipped := s.counter(t, "tistream_apiserver_pool_probes_skipped_total")
			t.Logf("GETs of publications above their group's newest: %.0f; polls answered from the notices: %.0f", above, skipped)
			if notices {
				require.Zero(t, above, "the pull looked for publications the notices said were not written")
				require.Positive(t, skipped)
			} else {
				require.Positive(t, above, "polling probes the next publication (else this test proves nothing)")
				require.Zero(t, skipped)
			}
		})
	}
}
