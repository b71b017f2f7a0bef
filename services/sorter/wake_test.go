package sorter

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
)

// TestPublishOnArrivalAndNotice: with a flush interval of a minute, a batch
// that moves the watermark is published at once (kicked, not ticked: the
// wait below is far shorter than the interval), the publication's notice
// is in etcd on the sorter's lease and wakes a reader's watch of the
// tenant, and the next movement waits for the interval (the bound on
// requests per MiB) instead of being published at once.
func TestPublishOnArrivalAndNotice(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var mu sync.Mutex
	var named []error // per notice naming a publication: reading that publication when it arrived
	w := etcdx.NewWakeups(e.cli, slog.New(slog.DiscardHandler), etcdx.NoticeHooks{Notice: func(n etcdx.Notice) {
		if n.Named() {
			_, err := e.pool.Get(context.Background(), layout.GroupPubKey(n.Tenant, n.Group, n.Seq))
			mu.Lock()
			named = append(named, err)
			mu.Unlock()
		}
	}})
	go w.Run(ctx)
	require.Eventually(t, w.Live, waitFor, pollEvery, "the notice watch never came up")
	wake := w.Chan(tenant)

	s, f := e.sorterFeedingRange1(func(c *Config) { c.FlushInterval = time.Minute })
	f.send(tenant, 1, 1, 1, 1, file1()...)
	e.waitPublished(tenant, 1, 99)

	select {
	case <-wake:
	case <-time.After(waitFor):
		t.Fatal("the publication's notice did not wake the tenant's watch")
	}
	resp, err := e.cli.Get(ctx, etcdx.PublishedKey(tenant, "s1"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.NotZero(t, resp.Kvs[0].Lease, "the notice lives on the sorter's lease")
	mu.Lock()
	require.NotEmpty(t, named, "the notice names its publication (%q)", resp.Kvs[0].Value)
	for _, err := range named {
		require.NoError(t, err, "the publication a notice names exists when the notice arrives")
	}
	mu.Unlock()

	// The next movement is held for the rest of the minute.
	f.send(tenant, 1, 2, 1, 1, file2()...)
	time.Sleep(1500 * time.Millisecond) // longer than the fallback tick: nothing may publish before the interval
	_, wm := e.published(tenant, 1)
	require.Equal(t, uint64(99), wm, "published again before the flush interval")

	// A stopped sorter takes its notices with it (its lease is revoked).
	stopSorter(t, s)
	resp, err = e.cli.Get(ctx, etcdx.PublishedPrefix, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)
}

// TestPublishEarlyOnFlushBytes: with a minute's flush interval, the next
// publication comes as soon as flush_bytes of rows arrived for the tenant
// since its last round began (here any row), not a minute later, and the
// round counts as early.
func TestPublishEarlyOnFlushBytes(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(func(c *Config) { c.FlushInterval, c.FlushBytes = time.Minute, 1 })
	f.send(tenant, 1, 1, 1, 1, file1()...)
	e.waitPublished(tenant, 1, 99)
	require.Zero(t, counterSum(t, s.registry, "tistream_sorter_publish_rounds_early_total"), "the first round is due at once")
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130), "published before the interval, once the rows arrived")
	require.Positive(t, counterSum(t, s.registry, "tistream_sorter_publish_rounds_early_total"))
}
