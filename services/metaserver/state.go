package metaserver

import (
	"context"
	"log/slog"
	"strings"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// state is the meta-server's watched view of etcd. It runs on standbys too,
// so a new leader starts scheduling from a warm view.
type state struct {
	workers *mirror[*metav1.WorkerInfo]
	tenants *mirror[*metav1.TenantInfo]
	ranges  *mirror[*metav1.RangeTask]
	streams *mirror[*metav1.StreamTask]
	drains  *mirror[*metav1.DrainRequest] // autoscale.go
}

// newState builds the mirrors; schedule is poked when something the
// scheduler acts on changes, seal when a range task changes.
func newState(cli *clientv3.Client, log *slog.Logger, schedule, seal func()) *state {
	st := &state{
		workers: newMirror("workers", etcdx.WorkersPrefix, cli, log, func() *metav1.WorkerInfo { return &metav1.WorkerInfo{} }),
		tenants: newMirror("tenants", etcdx.TenantsPrefix, cli, log, func() *metav1.TenantInfo { return &metav1.TenantInfo{} }),
		ranges:  newMirror("ranges", etcdx.RangesPrefix, cli, log, func() *metav1.RangeTask { return &metav1.RangeTask{} }),
		streams: newMirror("streams", etcdx.StreamsPrefix, cli, log, func() *metav1.StreamTask { return &metav1.StreamTask{} }),
		drains:  newMirror("drains", etcdx.DrainsPrefix, cli, log, func() *metav1.DrainRequest { return &metav1.DrainRequest{} }),
	}
	st.workers.onChange = func(old, cur *entry[*metav1.WorkerInfo]) {
		// A load update alone does not change any decision worth a round
		// now; the periodic round picks it up. A worker starting to drain
		// does.
		if old == nil || cur == nil || old.val.Draining != cur.val.Draining {
			schedule()
		}
	}
	st.ranges.onChange = func(_, _ *entry[*metav1.RangeTask]) {
		schedule()
		seal()
	}
	st.drains.onChange = func(_, _ *entry[*metav1.DrainRequest]) { schedule() }
	st.streams.onChange = func(old, cur *entry[*metav1.StreamTask]) {
		// Streams change at every coalesced notification; only a new,
		// removed or reassigned stream concerns the scheduler.
		if old == nil || cur == nil || old.val.Owner != cur.val.Owner {
			schedule()
		}
	}
	return st
}

// run follows every prefix until ctx ends.
func (st *state) run(ctx context.Context, spawn func(func())) {
	spawn(func() { st.workers.run(ctx) })
	spawn(func() { st.tenants.run(ctx) })
	spawn(func() { st.ranges.run(ctx) })
	spawn(func() { st.streams.run(ctx) })
	spawn(func() { st.drains.run(ctx) })
}

// ready reports whether every mirror has done its first full read.
func (st *state) ready() bool {
	return st.workers.ready() && st.tenants.ready() && st.ranges.ready() && st.streams.ready() && st.drains.ready()
}

// liveWorkers returns the registered workers of a kind by id.
func (st *state) liveWorkers(kind metav1.WorkerKind) map[string]*metav1.WorkerInfo {
	prefix := etcdx.WorkerPrefix(kind)
	out := map[string]*metav1.WorkerInfo{}
	for _, e := range st.workers.list(prefix) {
		out[strings.TrimPrefix(e.key, prefix)] = e.val
	}
	return out
}

// workerAddr is the gRPC address of a registered worker ("" if it is not).
func (st *state) workerAddr(kind metav1.WorkerKind, id string) string {
	if id == "" {
		return ""
	}
	if e := st.workers.get(etcdx.WorkerKey(kind, id)); e != nil {
		return e.val.Addr
	}
	return ""
}
