package schemaregistry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/svc/svctest"
)

// TestNoticeWakesTheRegistry: with both poll intervals an hour, a registry
// that read what the pool held reads what is published later only when a
// publication notice of its tenant arrives in etcd (as a sorter puts it).
func TestNoticeWakesTheRegistry(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)
	pl := mustLocalFS(t)
	cfg := testConfig()
	cfg.PollInterval, cfg.FallbackPollInterval = time.Hour, time.Hour

	// The replay writes the pool's first half, then waits.
	paused, release := make(chan struct{}), make(chan struct{})
	objs, err := objstore.ListAll(context.Background(), w.buffer, "", "")
	require.NoError(t, err)
	gate := &gatedStore{Store: w.buffer, after: int64(len(objs) / 2), hook: func() bool {
		close(paused)
		<-release
		return true
	}}
	replayDone := make(chan error, 1)
	go func() {
		_, err := replay.Run(context.Background(), replay.Config{Buffer: gate, Pool: pl, Cluster: w.cluster,
			Ranges: 2, WorkDir: t.TempDir(), FlushEvery: 5})
		replayDone <- err
	}()
	select {
	case <-paused:
	case err := <-replayDone:
		t.Fatalf("the replay ended (err %v) before pausing", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the replay never paused")
	}
	r := start(t, cfg, cli, pl, mustLocalFS(t))
	first := r.waitResolved(t, 1, w.snapTs+1)
	// Caught up with the first half: waiting, its position stays.
	require.Eventually(t, func() bool {
		before, _ := r.svc.TenantStatus(1)
		time.Sleep(200 * time.Millisecond)
		first, _ = r.svc.TenantStatus(1)
		return first.Resolved == before.Resolved
	}, 30*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-replayDone)
	require.Less(t, first.Resolved, w.final)

	// Everything is published now, but nothing announced it: the
	// registry stays where it was (its next poll is an hour away)...
	time.Sleep(300 * time.Millisecond)
	st, ok := r.svc.TenantStatus(1)
	require.True(t, ok)
	require.Equal(t, first.Resolved, st.Resolved, "read without a notice")
	// ...until a notice of the tenant (a sorter's, after a publication).
	_, err = cli.Put(context.Background(), etcdx.PublishedKey(1, "sorter-x"), "g/1")
	require.NoError(t, err)
	r.waitResolved(t, 1, w.final)

	// Notices naming each group's newest publication: at the next wake the
	// caught-up registry answers its look for the one after from them.
	pubs, err := objstore.ListAll(context.Background(), pl, layout.GroupsPrefix(1), "")
	require.NoError(t, err)
	newest := map[string]uint64{}
	for _, o := range pubs {
		group, rest, _ := strings.Cut(strings.TrimPrefix(o.Key, layout.GroupsPrefix(1)), "/")
		if seq, err := layout.ParseGroupSeqKey(o.Key); err == nil && strings.HasPrefix(rest, "pub/") {
			newest[group] = max(newest[group], seq)
		}
	}
	require.NotEmpty(t, newest)
	for group, seq := range newest {
		_, err = cli.Put(context.Background(), etcdx.PublishedKey(1, "sorter-"+group), etcdx.NoticeValue(group, seq))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return r.svc.heads.Skipped() > 0 }, 30*time.Second, time.Millisecond,
		"the registry looked for publications the notices said were not written")
}
