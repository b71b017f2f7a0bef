package etcdx_test

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
	"github.com/tistream/tistream/libs/svc/svctest"
)

func TestParsePublishedKey(t *testing.T) {
	for _, c := range []struct {
		key    string
		tenant uint64
		ok     bool
	}{
		{etcdx.PublishedKey(7, "sorter-1"), 7, true},
		{etcdx.PublishedPrefix + "18446744073709551615/s", 1<<64 - 1, true},
		{etcdx.PublishedPrefix + "7", 0, false},       // no sorter
		{etcdx.PublishedPrefix + "x/s", 0, false},     // not a number
		{etcdx.PublishedPrefix + "-1/s", 0, false},    // negative
		{etcdx.RangesPrefix + "7/sorter-1", 0, false}, // another family
	} {
		got, ok := etcdx.ParsePublishedKey(c.key)
		require.Equal(t, c.ok, ok, c.key)
		require.Equal(t, c.tenant, got, c.key)
	}
}

func closedWithin(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// TestNoticesWakeTheirTenant runs a sorter's notifier and a reader's
// wake-ups against a real etcd: a publication of tenant 1 wakes tenant 1's
// waiters (after the Notice hook), not tenant 2's; the notice lives on the lease;
// Wait falls back to its poll interval without a notice.
func TestNoticesWakeTheirTenant(t *testing.T) {
	cli := svctest.Etcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lease, err := cli.Grant(ctx, 60)
	require.NoError(t, err)

	var mu sync.Mutex
	var events []uint64
	var named []etcdx.Notice
	w := etcdx.NewWakeups(cli, slog.New(slog.DiscardHandler), etcdx.NoticeHooks{Notice: func(n etcdx.Notice) {
		mu.Lock()
		events = append(events, n.Tenant)
		if n.Named() {
			named = append(named, n)
		}
		mu.Unlock()
	}})
	require.False(t, w.Live())
	go w.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !w.Live() {
		require.True(t, time.Now().Before(deadline), "the watch never came up")
		time.Sleep(5 * time.Millisecond)
	}

	var errs []error
	n := etcdx.NewNotifier(cli, "sorter-a", func() clientv3.LeaseID { return lease.ID }, func(err error) { errs = append(errs, err) })
	go n.Run(ctx)

	one, two := w.Chan(1), w.Chan(2)
	require.Equal(t, one, w.Chan(1), "waiters of a tenant share its channel until the notice")
	n.Published(1, "g1", 5)
	require.True(t, closedWithin(one, 10*time.Second), "tenant 1's notice did not wake its waiters")
	require.False(t, closedWithin(two, 100*time.Millisecond), "tenant 1's notice woke tenant 2")
	mu.Lock()
	require.Contains(t, events, uint64(1))
	require.NotContains(t, events, uint64(2))
	require.Equal(t, []etcdx.Notice{{Tenant: 1, Sorter: "sorter-a", Group: "g1", Seq: 5}}, named, "the notice names the publication")
	mu.Unlock()
	require.NotEqual(t, one, w.Chan(1), "a new channel after the notice")

	resp, err := cli.Get(ctx, etcdx.PublishedKey(1, "sorter-a"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "v1 g1 5", string(resp.Kvs[0].Value))
	require.Equal(t, int64(lease.ID), resp.Kvs[0].Lease, "the notice goes with the sorter's lease")

	// Wait: a notice ends it at once; without one, the live watch's
	// fallback interval applies (not the short poll).
	wake := w.Chan(2)
	go n.Published(2, "g2", 1)
	notice, err := w.Wait(ctx, wake, time.Hour, time.Hour)
	require.NoError(t, err)
	require.True(t, notice)
	start := time.Now()
	notice, err = w.Wait(ctx, w.Chan(3), time.Hour, 20*time.Millisecond)
	require.NoError(t, err)
	require.False(t, notice)
	require.Less(t, time.Since(start), 10*time.Second)

	// Notices of two groups of one tenant queued together are both put
	// (a FENCE the sorter wrote into a previous owner's group, and its own
	// publication): neither replaces the other.
	n.Published(4, "own", 7)
	n.Published(4, "old", 3)
	n.Published(4, "own", 6) // queued behind 7: the newest seq wins
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := map[string]uint64{}
		for _, x := range named {
			if x.Tenant == 4 {
				got[x.Group] = max(got[x.Group], x.Seq)
			}
		}
		return got["own"] == 7 && got["old"] == 3
	}, 10*time.Second, 5*time.Millisecond, "both groups' notices arrive")

	// A nil Wakeups (no etcd) polls at the short interval.
	var none *etcdx.Wakeups
	require.Nil(t, none.Chan(1))
	notice, err = none.Wait(ctx, none.Chan(1), 10*time.Millisecond, time.Hour)
	require.NoError(t, err)
	require.False(t, notice)

	_, err = cli.Revoke(ctx, lease.ID)
	require.NoError(t, err)
	resp, err = cli.Get(ctx, etcdx.PublishedPrefix, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "notices are gone with the lease")
	require.Empty(t, errs)
}

// FuzzParsePublishedKey: any key parses without panicking, and a notice key
// gives back its tenant.
func FuzzParsePublishedKey(f *testing.F) {
	f.Add(etcdx.PublishedKey(1, "sorter-1"))
	f.Add(etcdx.PublishedPrefix + "/")
	f.Add(etcdx.PublishedPrefix + "99999999999999999999/x")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		tenant, ok := etcdx.ParsePublishedKey(key)
		if ok {
			again, ok2 := etcdx.ParsePublishedKey(etcdx.PublishedKey(tenant, "s"))
			require.True(t, ok2)
			require.Equal(t, tenant, again)
		}
	})
}

func TestParseNoticeValue(t *testing.T) {
	for _, c := range []struct {
		value string
		group string
		seq   uint64
	}{
		{etcdx.NoticeValue("s1-1733-1", 42), "s1-1733-1", 42},
		{"v1 g 5", "g", 5},
		{"v1 g 5 more fields later", "g", 5}, // fields after the third are ignored
		{"g-1-2/7", "g-1-2", 7},              // before version 1
		{"v1 g 0", "", 0},                    // seqs start at 1
		{"v1 g", "", 0},
		{"v1 g x", "", 0},
		{"v1 g 18446744073709551616", "", 0},
		{"v1 .g 5", "", 0}, // not a group id
		{"v1 a/b 5", "", 0},
		{"v1  5", "", 0},
		{"v2 g 5", "", 0}, // a later version
		{"g/", "", 0},
		{"/5", "", 0},
		{"", "", 0},
	} {
		group, seq, ok := etcdx.ParseNoticeValue(c.value)
		require.Equal(t, c.group != "", ok, "%q", c.value)
		require.Equal(t, c.group, group, "%q", c.value)
		require.Equal(t, c.seq, seq, "%q", c.value)
	}
}

// FuzzParseNoticeValue: any value parses without panicking; one that names
// a publication names a valid group and seq, which NoticeValue writes back
// to the same.
func FuzzParseNoticeValue(f *testing.F) {
	f.Add("v1 g 5")
	f.Add("g/5")
	f.Fuzz(func(t *testing.T, v string) {
		group, seq, ok := etcdx.ParseNoticeValue(v)
		if !ok {
			require.Empty(t, group)
			require.Zero(t, seq)
			return
		}
		require.True(t, layout.ValidGroupID(group), "%q", group)
		require.Positive(t, seq)
		g2, s2, ok2 := etcdx.ParseNoticeValue(etcdx.NoticeValue(group, seq))
		require.True(t, ok2)
		require.Equal(t, group, g2)
		require.Equal(t, seq, s2)
	})
}

// TestNoticeHooks: a value in the form before version 1 names its
// publication, one not understood still wakes its tenant (naming none), and
// when the watch ends (its client closed) Lost runs and it is not live.
func TestNoticeHooks(t *testing.T) {
	cli := svctest.Etcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wcli, err := clientv3.New(clientv3.Config{Endpoints: cli.Endpoints(), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	notices := make(chan etcdx.Notice, 16)
	lost := make(chan struct{}, 1)
	w := etcdx.NewWakeups(wcli, slog.New(slog.DiscardHandler), etcdx.NoticeHooks{
		Notice: func(n etcdx.Notice) { notices <- n },
		Lost: func() {
			select {
			case lost <- struct{}{}:
			default:
			}
		},
	})
	go w.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !w.Live() {
		require.True(t, time.Now().Before(deadline), "the watch never came up")
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range []struct {
		sorter, value string
		want          etcdx.Notice
	}{
		{"old-sorter", "g-1-2/7", etcdx.Notice{Tenant: 4, Sorter: "old-sorter", Group: "g-1-2", Seq: 7}},
		{"new-sorter", "v1 g-3-4 9", etcdx.Notice{Tenant: 4, Sorter: "new-sorter", Group: "g-3-4", Seq: 9}},
		{"future-sorter", "v9 {\"group\":\"g\"}", etcdx.Notice{Tenant: 4, Sorter: "future-sorter"}},
	} {
		wake := w.Chan(4)
		_, err := cli.Put(ctx, etcdx.PublishedKey(4, c.sorter), c.value)
		require.NoError(t, err)
		require.True(t, closedWithin(wake, 10*time.Second), "%q did not wake tenant 4", c.value)
		require.Equal(t, c.want, <-notices, "%q", c.value)
	}
	require.NoError(t, wcli.Close())
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("Lost did not run when the watch ended")
	}
	require.False(t, w.Live())
}
