package tenantcfg

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Watcher follows the tenants' records in etcd and gives each tenant's
// effective settings. Safe for concurrent use.
type Watcher struct {
	cli  *clientv3.Client
	def  Defaults
	log  *slog.Logger
	mu   sync.RWMutex
	byID map[uint64]Effective
	subs []func(Effective, bool)
	// loaded is closed after the first complete load.
	loaded   chan struct{}
	loadOnce sync.Once
}

// NewWatcher returns a watcher; Run starts it.
func NewWatcher(cli *clientv3.Client, d Defaults, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cli: cli, def: d, log: log, byID: map[uint64]Effective{}, loaded: make(chan struct{})}
}

// Static returns a watcher that never reads etcd: every tenant has the
// fleet defaults, plus the given records (tests and single-tenant tools).
func Static(d Defaults, infos ...*metav1.TenantInfo) *Watcher {
	w := NewWatcher(nil, d, slog.New(slog.DiscardHandler))
	for _, in := range infos {
		w.byID[in.GetTenantId()] = Resolve(in, d)
	}
	w.loadOnce.Do(func() { close(w.loaded) })
	return w
}

// Defaults returns the fleet defaults the watcher fills in.
func (w *Watcher) Defaults() Defaults { return w.def }

// Get returns a tenant's effective settings; ok is false when the tenant is
// not registered (or not loaded yet).
func (w *Watcher) Get(tenant uint64) (Effective, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.byID[tenant]
	return e, ok
}

// Settings returns a tenant's effective settings, the fleet defaults when
// the tenant is unknown (registered after the last event seen).
func (w *Watcher) Settings(tenant uint64) Effective {
	if e, ok := w.Get(tenant); ok {
		return e
	}
	e := Resolve(&metav1.TenantInfo{TenantId: tenant}, w.def)
	return e
}

// All returns every known tenant's settings.
func (w *Watcher) All() []Effective {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]Effective, 0, len(w.byID))
	for _, e := range w.byID {
		out = append(out, e)
	}
	return out
}

// OnChange registers fn, called (outside the watcher's lock, from the
// watcher's goroutine) with a tenant's new settings whenever its record
// changes, and with exists=false when the record is deleted. Register
// before Run.
func (w *Watcher) OnChange(fn func(e Effective, exists bool)) {
	w.mu.Lock()
	w.subs = append(w.subs, fn)
	w.mu.Unlock()
}

// WaitLoaded blocks until the first complete load (or ctx ends).
func (w *Watcher) WaitLoaded(ctx context.Context) error {
	select {
	case <-w.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tenant settings not loaded from etcd: %w", ctx.Err())
	}
}

// Run loads every tenant, then follows changes until ctx ends, loading
// again (with backoff) whenever the watch breaks.
func (w *Watcher) Run(ctx context.Context) {
	if w.cli == nil {
		<-ctx.Done()
		return
	}
	etcdx.Rewatch(ctx, func(ctx context.Context, backoff time.Duration) {
		if err := w.once(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("tenant settings watch broken; retrying", "err", err, "backoff", backoff)
		}
	})
}

// once loads every record and applies changes from the revision after the
// load until the watch breaks.
func (w *Watcher) once(ctx context.Context) error {
	all, rev, err := etcdx.ListProto(ctx, w.cli, etcdx.TenantsPrefix, func() *metav1.TenantInfo { return &metav1.TenantInfo{} })
	if err != nil {
		return err
	}
	fresh := make(map[uint64]Effective, len(all))
	for _, in := range all {
		fresh[in.GetTenantId()] = Resolve(in, w.def)
	}
	w.mu.Lock()
	old := w.byID
	w.byID = fresh
	subs := append([]func(Effective, bool){}, w.subs...)
	w.mu.Unlock()
	for id, e := range fresh {
		if o, ok := old[id]; !ok || o != e {
			notify(subs, e, true)
		}
	}
	for id, o := range old {
		if _, ok := fresh[id]; !ok {
			notify(subs, o, false)
		}
	}
	w.loadOnce.Do(func() { close(w.loaded) })

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := w.cli.Watch(clientv3.WithRequireLeader(wctx), etcdx.TenantsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", etcdx.TenantsPrefix, err)
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				id, ok := parseTenantKey(key)
				if !ok {
					continue
				}
				w.mu.Lock()
				o, had := w.byID[id]
				delete(w.byID, id)
				subs := append([]func(Effective, bool){}, w.subs...)
				w.mu.Unlock()
				if had {
					notify(subs, o, false)
				}
				continue
			}
			in := &metav1.TenantInfo{}
			if err := proto.Unmarshal(ev.Kv.Value, in); err != nil {
				w.log.Error("tenant record does not decode; keeping the previous settings", "key", key, "err", err)
				continue
			}
			e := Resolve(in, w.def)
			w.mu.Lock()
			w.byID[e.Tenant] = e
			subs := append([]func(Effective, bool){}, w.subs...)
			w.mu.Unlock()
			notify(subs, e, true)
		}
	}
	return fmt.Errorf("watch %s closed", etcdx.TenantsPrefix)
}

func notify(subs []func(Effective, bool), e Effective, exists bool) {
	for _, fn := range subs {
		fn(e, exists)
	}
}

func parseTenantKey(key string) (uint64, bool) {
	if len(key) <= len(etcdx.TenantsPrefix) {
		return 0, false
	}
	id, err := strconv.ParseUint(key[len(etcdx.TenantsPrefix):], 10, 64)
	return id, err == nil
}
