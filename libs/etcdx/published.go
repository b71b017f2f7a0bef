package etcdx

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Publication notices: a sorter puts PublishedKey(tenant, itself) after each
// group publication of the tenant (attached to its worker lease, so the key
// goes with the sorter), and the readers of the pool (api-servers, schema
// registries) watch PublishedPrefix to read at once instead of waiting for
// their next poll. The key's value names the publication
// (docs/etcd-keys.md, "Publication notices"):
//
//	v1 {group} {seq}
//
// the group the sorter publishes the tenant in and the seq of the newest
// publication it had written there when it put the value (NoticeValue,
// ParseNoticeValue). Readers use it to skip looking for seq+1 until a later
// notice names it (pool.Heads). A lost notice costs lag, never data: the
// readers still poll, only more slowly.

// PublishedPrefix holds the publication notices.
const PublishedPrefix = Root + "published/"

// PublishedKey is the notice of one sorter's publications of one tenant.
func PublishedKey(tenant uint64, sorter string) string {
	return PublishedPrefix + u(tenant) + "/" + sorter
}

// ParsePublishedKey returns the tenant of a notice key.
func ParsePublishedKey(key string) (uint64, bool) {
	n, ok := parseNotice([]byte(key), nil)
	return n.Tenant, ok
}

// NoticeHooks are what a follower of the notices does besides waking the
// waiters. Nil fields do nothing.
type NoticeHooks struct {
	// Notice runs for every notice put, before its tenant's waiters wake;
	// and, each time the watch is (re-)established, once for every tenant
	// with waiters, with a Notice that names no publication (notices may
	// have been missed meanwhile).
	Notice func(Notice)
	// Lost runs each time the watch ends (broken, or the follower stops):
	// from then until it is back notices may be missed, so what the earlier
	// ones said is not to be relied on any more.
	Lost func()
}

// Wakeups follows the publication notices of every tenant with one watch and
// wakes the waiters of a tenant at each of its notices.
type Wakeups struct {
	cli   *clientv3.Client
	log   *slog.Logger
	hooks NoticeHooks
	live  atomic.Bool // the watch is established
	// unnamed: a notice value was not understood (logged once).
	unnamed atomic.Bool

	mu sync.Mutex
	ch map[uint64]chan struct{} // closed at the tenant's next notice
}

// NewWakeups returns a follower of the notices; Run starts it.
func NewWakeups(cli *clientv3.Client, log *slog.Logger, hooks NoticeHooks) *Wakeups {
	return &Wakeups{cli: cli, log: log, hooks: hooks, ch: map[uint64]chan struct{}{}}
}

// Chan returns a channel closed at the tenant's next notice. Take it before
// reading the pool, so a notice that arrives during the read is not missed.
// A nil Wakeups returns nil (a channel that never fires).
func (w *Wakeups) Chan(tenant uint64) <-chan struct{} {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.ch[tenant]
	if c == nil {
		c = make(chan struct{})
		w.ch[tenant] = c
	}
	return c
}

// Live tells whether the watch is established: while it is not, waiters
// should poll at their short interval.
func (w *Wakeups) Live() bool { return w != nil && w.live.Load() }

// Wait waits for wake (from Chan) or, if no notice comes, for the poll
// interval that applies: fallback while the watch is live, poll while it is
// not (or w is nil). notice tells which ended it; err is ctx's error when ctx
// ended first.
func (w *Wakeups) Wait(ctx context.Context, wake <-chan struct{}, poll, fallback time.Duration) (notice bool, err error) {
	d := poll
	if w.Live() {
		d = fallback
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-wake:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (w *Wakeups) notice(n Notice) {
	if w.hooks.Notice != nil {
		w.hooks.Notice(n)
	}
}

func (w *Wakeups) wake(tenant uint64) {
	w.mu.Lock()
	c := w.ch[tenant]
	delete(w.ch, tenant)
	w.mu.Unlock()
	if c != nil {
		close(c)
	}
}

// wakeAll wakes every waiter (after the watch was re-established: notices may
// have been missed).
func (w *Wakeups) wakeAll() {
	w.mu.Lock()
	all := w.ch
	w.ch = map[uint64]chan struct{}{}
	w.mu.Unlock()
	for t, c := range all {
		w.notice(Notice{Tenant: t})
		close(c)
	}
}

// Run watches until ctx ends, establishing the watch again (with backoff)
// whenever it breaks.
func (w *Wakeups) Run(ctx context.Context) {
	Rewatch(ctx, func(ctx context.Context, _ time.Duration) {
		w.watch(ctx)
		w.live.Store(false)
		if w.hooks.Lost != nil {
			w.hooks.Lost()
		}
	})
}

// Rewatch calls watch until ctx ends, again each time it returns (a watch
// that broke), waiting a backoff in between: 100 ms doubling to 5 s, back
// to 100 ms after a watch that lasted 10 s. watch is told the backoff that
// will follow it, for its log line.
func Rewatch(ctx context.Context, watch func(ctx context.Context, backoff time.Duration)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		watch(ctx, backoff)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (w *Wakeups) watch(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := w.cli.Watch(clientv3.WithRequireLeader(ctx), PublishedPrefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			if ctx.Err() == nil {
				w.log.Debug("publication notice watch broken; polling until it is back", "err", err)
			}
			return
		}
		if resp.Created {
			w.live.Store(true)
			w.wakeAll()
			continue
		}
		var woken []uint64
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			n, ok := parseNotice(ev.Kv.Key, ev.Kv.Value)
			if !ok {
				continue
			}
			if !n.Named() && !w.unnamed.Swap(true) {
				w.log.Info("a publication notice's value names no publication (another version?); its readers look for the next publication by polling",
					"key", string(ev.Kv.Key), "value", string(ev.Kv.Value))
			}
			w.notice(n)
			if !slices.Contains(woken, n.Tenant) {
				woken = append(woken, n.Tenant)
			}
		}
		for _, t := range woken {
			w.wake(t)
		}
	}
}

// Notifier puts the publication notices of one sorter without holding up its
// publishers: notices of one group of a tenant coalesce while one is being
// written (the newest seq wins).
type Notifier struct {
	cli    *clientv3.Client
	sorter string
	lease  func() clientv3.LeaseID // the current worker lease (0 = none: skip)
	onErr  func(error)

	mu      sync.Mutex
	pending map[noticeOf]uint64 // the newest seq to announce per tenant and group
	kick    chan struct{}
}

// noticeOf is what a notice announces: a group of a tenant. Notices of one
// group coalesce; those of different groups (the sorter's own and one it
// wrote a FENCE into) are each put, one after the other.
type noticeOf struct {
	tenant uint64
	group  string
}

// NewNotifier returns a notifier of sorter's publications; Run writes them.
func NewNotifier(cli *clientv3.Client, sorter string, lease func() clientv3.LeaseID, onErr func(error)) *Notifier {
	return &Notifier{cli: cli, sorter: sorter, lease: lease, onErr: onErr, pending: map[noticeOf]uint64{}, kick: make(chan struct{}, 1)}
}

// Published queues the notice of a publication (group id and seq).
func (n *Notifier) Published(tenant uint64, group string, seq uint64) {
	if n == nil {
		return
	}
	n.mu.Lock()
	k := noticeOf{tenant, group}
	n.pending[k] = max(n.pending[k], seq)
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run writes the queued notices until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		n.mu.Lock()
		batch := n.pending
		n.pending = map[noticeOf]uint64{}
		n.mu.Unlock()
		lease := n.lease()
		if lease == 0 {
			continue
		}
		for k, seq := range batch {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := n.cli.Put(cctx, PublishedKey(k.tenant, n.sorter), NoticeValue(k.group, seq), clientv3.WithLease(lease))
			cancel()
			if err != nil && ctx.Err() == nil && n.onErr != nil {
				n.onErr(err)
			}
		}
	}
}
