package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// routes keeps the routing state of every tenant some stream here needs:
// the tenant's range tasks and the registered sorters' addresses, both
// watched in etcd, turned into routeSnaps.
type routes struct {
	ctx       context.Context
	cli       *clientv3.Client
	log       *slog.Logger
	onSorters func() // called (unlocked) when the sorter set changes

	wg sync.WaitGroup // the watchers

	mu         sync.Mutex
	sorters    map[string]string // sorter id -> address
	sortersRev int64
	tenants    map[uint64]*tenantRoutes
}

// tenantRoutes is one tenant's range tasks and current snapshot.
type tenantRoutes struct {
	tenant  uint64
	refs    int
	cancel  context.CancelFunc
	tasks   map[uint64]*metav1.RangeTask
	rev     int64
	snap    *routeSnap
	lastErr string
}

func newRoutes(ctx context.Context, cli *clientv3.Client, log *slog.Logger, onSorters func()) *routes {
	return &routes{ctx: ctx, cli: cli, log: log, onSorters: onSorters,
		sorters: map[string]string{}, tenants: map[uint64]*tenantRoutes{}}
}

// followSorters watches the registered sorters until ctx ends.
func (r *routes) followSorters(ctx context.Context) {
	follow(ctx, r.cli, r.log, etcdx.WorkerPrefix(metav1.WorkerKind_WORKER_KIND_SORTER), sorterFollower{r})
}

// acquire starts following tenant's ranges (shared by its streams).
func (r *routes) acquire(tenant uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := r.tenants[tenant]
	if tr == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		tr = &tenantRoutes{tenant: tenant, cancel: cancel, tasks: map[uint64]*metav1.RangeTask{},
			snap: &routeSnap{owners: map[uint64]rangeOwner{}, changed: make(chan struct{})}}
		r.tenants[tenant] = tr
		r.wg.Go(func() {
			follow(ctx, r.cli, r.log.With("tenant", tenant), etcdx.RangeTenantPrefix(tenant), rangeFollower{r, tr})
		})
	}
	tr.refs++
}

// release stops following tenant when its last stream here stops.
func (r *routes) release(tenant uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tr := r.tenants[tenant]; tr != nil {
		if tr.refs--; tr.refs <= 0 {
			tr.cancel()
			delete(r.tenants, tenant)
		}
	}
}

// current is tenant's latest snapshot (acquire first).
func (r *routes) current(tenant uint64) *routeSnap {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tr := r.tenants[tenant]; tr != nil {
		return tr.snap
	}
	return &routeSnap{owners: map[uint64]rangeOwner{}, changed: make(chan struct{})}
}

// refresh rereads tenant's ranges and the sorters now instead of waiting
// for the watches (after a NotOwner or a broken Ingest stream).
func (r *routes) refresh(ctx context.Context, tenant uint64) error {
	resp, err := r.cli.Get(ctx, etcdx.RangeTenantPrefix(tenant), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("refresh ranges of tenant %d: %w", tenant, err)
	}
	r.mu.Lock()
	tr := r.tenants[tenant]
	r.mu.Unlock()
	if tr != nil {
		rangeFollower{r, tr}.reset(resp.Kvs, resp.Header.Revision)
	}
	resp, err = r.cli.Get(ctx, etcdx.WorkerPrefix(metav1.WorkerKind_WORKER_KIND_SORTER), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("refresh sorters: %w", err)
	}
	sorterFollower{r}.reset(resp.Kvs, resp.Header.Revision)
	return nil
}

// recompute publishes tr's new snapshot if routing changed; r.mu held.
func (r *routes) recompute(tr *tenantRoutes) {
	table, err := buildTable(tr.tasks, tr.snap.table)
	if err != nil && len(tr.tasks) > 0 && err.Error() != tr.lastErr {
		r.log.Info("range tasks do not tile the key space, keeping the previous routing table",
			"tenant", tr.tenant, "ranges", len(tr.tasks), "reason", err)
	}
	tr.lastErr = ""
	if err != nil {
		tr.lastErr = err.Error()
	}
	owners := ownersOf(table, tr.tasks, r.sorters)
	sealing := sealingOf(table, tr.tasks)
	if table == tr.snap.table && sameOwners(owners, tr.snap.owners) && maps.Equal(sealing, tr.snap.sealing) {
		return
	}
	old := tr.snap
	tr.snap = &routeSnap{table: table, owners: owners, sealing: sealing, changed: make(chan struct{})}
	close(old.changed)
}

type rangeFollower struct {
	r  *routes
	tr *tenantRoutes
}

func (f rangeFollower) reset(kvs []*mvccpb.KeyValue, rev int64) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if rev <= f.tr.rev {
		return
	}
	f.tr.rev = rev
	clear(f.tr.tasks)
	for _, kv := range kvs {
		f.put(kv)
	}
	f.r.recompute(f.tr)
}

func (f rangeFollower) apply(ev *clientv3.Event) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	// Strictly older only: the keys one etcd transaction writes share its
	// revision (a split writes the parent and both children at once), so
	// "<=" would keep the first and drop the rest. An event at the revision
	// a reset read is in that read already; applying it again is harmless.
	if ev.Kv.ModRevision < f.tr.rev {
		return
	}
	f.tr.rev = ev.Kv.ModRevision
	if ev.Type == clientv3.EventTypeDelete {
		if _, id, err := etcdx.ParseTwoIDs(string(ev.Kv.Key), etcdx.RangesPrefix); err == nil {
			delete(f.tr.tasks, id)
		}
	} else {
		f.put(ev.Kv)
	}
	f.r.recompute(f.tr)
}

func (f rangeFollower) put(kv *mvccpb.KeyValue) {
	_, id, err := etcdx.ParseTwoIDs(string(kv.Key), etcdx.RangesPrefix)
	if err != nil {
		f.r.log.Warn("ignoring malformed range task key", "key", string(kv.Key), "err", err)
		return
	}
	t := &metav1.RangeTask{}
	if err := proto.Unmarshal(kv.Value, t); err != nil {
		f.r.log.Warn("ignoring undecodable range task", "key", string(kv.Key), "err", err)
		return
	}
	f.tr.tasks[id] = t
}

type sorterFollower struct{ r *routes }

func (f sorterFollower) reset(kvs []*mvccpb.KeyValue, rev int64) {
	f.r.mu.Lock()
	if rev <= f.r.sortersRev {
		f.r.mu.Unlock()
		return
	}
	f.r.sortersRev = rev
	clear(f.r.sorters)
	for _, kv := range kvs {
		f.put(kv)
	}
	f.changed()
}

func (f sorterFollower) apply(ev *clientv3.Event) {
	f.r.mu.Lock()
	if ev.Kv.ModRevision < f.r.sortersRev { // see rangeFollower.apply
		f.r.mu.Unlock()
		return
	}
	f.r.sortersRev = ev.Kv.ModRevision
	if ev.Type == clientv3.EventTypeDelete {
		delete(f.r.sorters, sorterID(ev.Kv.Key))
	} else {
		f.put(ev.Kv)
	}
	f.changed()
}

func (f sorterFollower) put(kv *mvccpb.KeyValue) {
	w := &metav1.WorkerInfo{}
	if err := proto.Unmarshal(kv.Value, w); err != nil || w.Addr == "" {
		f.r.log.Warn("ignoring unusable sorter registration", "key", string(kv.Key), "err", err)
		return
	}
	f.r.sorters[sorterID(kv.Key)] = w.Addr
}

// changed republishes every tenant's owners and tells the connection pool
// to drop connections to sorters that left; called with r.mu held, unlocks it.
func (f sorterFollower) changed() {
	for _, tr := range f.r.tenants {
		f.r.recompute(tr)
	}
	f.r.mu.Unlock()
	if f.r.onSorters != nil {
		f.r.onSorters()
	}
}

// wait waits for the watchers to end (after their context ended).
func (r *routes) wait() { r.wg.Wait() }

// liveAddrs is the set of registered sorter addresses.
func (r *routes) liveAddrs() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	addrs := map[string]bool{}
	for _, a := range r.sorters {
		addrs[a] = true
	}
	return addrs
}

func sorterID(key []byte) string {
	return strings.TrimPrefix(string(key), etcdx.WorkerPrefix(metav1.WorkerKind_WORKER_KIND_SORTER))
}
