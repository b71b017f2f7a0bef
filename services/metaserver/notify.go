package metaserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantcfg"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// reasonNoBuffer: the tenant's data change buffer (its buffer_url) cannot
// be opened (libs/tenantbuf's error names the tenant, the URL and why).
const reasonNoBuffer = "buffer_unavailable"

// notifyBatch is how many streams one coalesced etcd transaction updates.
const notifyBatch = 64

// notifyStoreFile records the notification for the next coalesced write and
// forwards it to the stream's dispatcher; neither waits for etcd.
//
// A store without a stream task gets one (docs/operations.md, "Bounds"):
// only while its tenant has fewer than --max-stores-per-tenant stores, and
// only if the file the notification names exists in the data change
// buffer, so that notifications made up for stores that never wrote a file
// create nothing.
func (s *Service) notifyStoreFile(ctx context.Context, req *metav1.NotifyStoreFileRequest) error {
	const method = "NotifyStoreFile"
	switch {
	case req.TenantId == 0:
		return s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id must be non-zero")
	case req.StoreId == 0:
		return s.refuse(method, reasonMalformed, codes.InvalidArgument, "store_id must be non-zero")
	case req.Seq == 0:
		return s.refuse(method, reasonMalformed, codes.InvalidArgument, "seq must be non-zero (store files are numbered from 1)")
	}
	info, err := s.tenant(ctx, req.TenantId)
	if err != nil {
		return err
	}
	if info == nil {
		return s.refuse(method, reasonUnknownTenant, codes.NotFound, "tenant %d is not registered; call RegisterTenant first", req.TenantId)
	}
	if !tenantcfg.Resolve(info, s.cfg.TenantDefaults).Active() {
		return s.refuse(method, reasonNotActive, codes.FailedPrecondition, "%s", s.notActiveMessage(info))
	}
	if info.ClusterId != req.ClusterId {
		return s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant %d is registered for cluster %d, the notification names cluster %d",
			req.TenantId, info.ClusterId, req.ClusterId)
	}
	e := s.state.streams.get(etcdx.StreamKey(req.TenantId, req.StoreId))
	if e == nil {
		if err := s.admitNewStore(ctx, req); err != nil {
			return err
		}
	}
	s.m.notifications.WithLabelValues("received").Inc()
	s.notes.record(streamNote{cluster: req.ClusterId, tenant: req.TenantId, store: req.StoreId, seq: req.Seq, maxTs: req.MaxTs})
	if e != nil {
		if addr := s.state.workerAddr(metav1.WorkerKind_WORKER_KIND_DISPATCHER, e.val.Owner); addr != "" {
			s.fwd.enqueue(addr, &dispatcherv1.NotifyRequest{TenantId: req.TenantId, StoreId: req.StoreId, Seq: req.Seq, MaxTs: req.MaxTs})
		}
	}
	return nil
}

// admitNewStore checks a notification for a store that has no stream task
// (in the mirror): the tenant's store count, then the file in the buffer.
func (s *Service) admitNewStore(ctx context.Context, req *metav1.NotifyStoreFileRequest) error {
	limit := s.cfg.MaxStoresPerTenant
	var existing []uint64
	for _, st := range s.state.streams.list(etcdx.StreamTenantPrefix(req.TenantId)) {
		existing = append(existing, st.val.StoreId)
	}
	if slices.Contains(existing, req.StoreId) || s.notes.admittedStore(req.TenantId, req.StoreId) {
		return nil // admitted meanwhile
	}
	// Cheap refusal first: a flood of made-up stores costs no buffer read.
	if len(existing) >= limit {
		return s.tooManyStores(req.TenantId, req.StoreId, len(existing))
	}
	key := layout.StoreFileKey(req.ClusterId, req.TenantId, req.StoreId, req.Seq, req.MaxTs)
	buffer, err := s.buffers.For(ctx, req.TenantId)
	if err != nil {
		return s.refuse("NotifyStoreFile", reasonNoBuffer, codes.FailedPrecondition, "%v", err)
	}
	if _, err := buffer.GetRange(ctx, key, 0, 0); err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return s.refuse("NotifyStoreFile", reasonNoSuchFile, codes.FailedPrecondition,
				"store %d of tenant %d has no stream yet and the data change buffer has no file seq %d max_ts %d of it; notify only files already written",
				req.StoreId, req.TenantId, req.Seq, req.MaxTs)
		}
		return fmt.Errorf("check store %d file %d in the data change buffer: %w", req.StoreId, req.Seq, err)
	}
	if ok, n := s.notes.admitStore(req.TenantId, req.StoreId, existing, limit); !ok {
		return s.tooManyStores(req.TenantId, req.StoreId, n)
	}
	return nil
}

// admittedStore reports whether a store's first notification was admitted
// this term.
func (n *notifier) admittedStore(tenant, store uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.admitted[tenant][store]
	return ok
}

// tenant returns a registered tenant from the mirror, falling back to etcd
// when the mirror has not caught up with a fresh registration.
func (s *Service) tenant(ctx context.Context, tenant uint64) (*metav1.TenantInfo, error) {
	if e := s.state.tenants.get(etcdx.TenantKey(tenant)); e != nil {
		return e.val, nil
	}
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(ctx, s.etcd, etcdx.TenantKey(tenant), info)
	if err != nil || !found {
		return nil, err
	}
	return info, nil
}

type streamID struct{ tenant, store uint64 }

type streamNote struct{ cluster, tenant, store, seq, maxTs uint64 }

// notifier coalesces notifications: the newest of each stream waits here
// until the next flush, so a stream costs at most one etcd write per
// interval however often its store writes files.
type notifier struct {
	s        *Service
	interval time.Duration

	mu      sync.Mutex
	pending map[streamID]streamNote
	// admitted are the stores, by tenant, whose first notification was
	// accepted this term; their stream tasks may not be in the mirror yet
	// (bounds.go, admitStore).
	admitted map[uint64]map[uint64]struct{}
}

func (n *notifier) record(note streamNote) {
	id := streamID{note.tenant, note.store}
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur, ok := n.pending[id]; !ok || note.seq > cur.seq {
		n.pending[id] = note
	}
}

// reset forgets what an earlier term left unwritten.
func (n *notifier) reset() {
	n.mu.Lock()
	n.pending = map[streamID]streamNote{}
	n.admitted = nil
	n.mu.Unlock()
}

func (n *notifier) take() map[streamID]streamNote {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pending
	n.pending = map[streamID]streamNote{}
	return p
}

// flushLoop writes the coalesced notifications while the term lasts.
func (n *notifier) flushLoop(t *term) {
	tick := time.NewTicker(n.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			if err := n.flush(t); err != nil && !errors.Is(err, errNotLeader) && t.ctx.Err() == nil {
				n.s.log.Warn("write stream positions failed", "err", err)
			}
		}
	}
}

type streamWrite struct {
	note streamNote
	cmp  clientv3.Cmp
	op   clientv3.Op
}

// flush writes each pending stream's latest seq, creating the stream task
// the first time a store appears. A write whose compare fails (the mirror
// lagged, or the scheduler reassigned the stream meanwhile) goes back to
// pending for the next flush.
func (n *notifier) flush(t *term) error {
	var writes []streamWrite
	for _, note := range n.take() {
		// The mirror may not hold a tenant registered a moment ago: ask etcd
		// then, never drop its first notifications for that.
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		info, err := n.s.tenant(ctx, note.tenant)
		cancel()
		if err != nil {
			n.record(note) // the next flush tries again
			continue
		}
		if info == nil || !tenantcfg.Resolve(info, n.s.cfg.TenantDefaults).Active() {
			continue // deregistered (or deleted) after the notification (offboard.go)
		}
		key := etcdx.StreamKey(note.tenant, note.store)
		task := &metav1.StreamTask{ClusterId: note.cluster, TenantId: note.tenant, StoreId: note.store}
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if e := n.s.state.streams.get(key); e != nil {
			if e.val.LatestSeq >= note.seq {
				continue
			}
			task = proto.Clone(e.val).(*metav1.StreamTask)
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", e.modRev)
		}
		task.LatestSeq, task.LatestMaxTs = note.seq, note.maxTs
		writes = append(writes, streamWrite{note: note, cmp: cmp, op: clientv3.OpPut(key, etcdx.Marshal(task))})
	}
	for len(writes) > 0 {
		batch := writes[:min(len(writes), notifyBatch)]
		writes = writes[len(batch):]
		if err := n.write(t, batch); err != nil {
			for _, w := range append(batch, writes...) {
				n.record(w.note)
			}
			return err
		}
	}
	return nil
}

// write commits a batch in one transaction; if any compare fails, it
// retries the writes one by one so one stale stream does not hold back
// the others.
func (n *notifier) write(t *term, batch []streamWrite) error {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	cmps, ops := make([]clientv3.Cmp, len(batch)), make([]clientv3.Op, len(batch))
	for i, w := range batch {
		cmps[i], ops[i] = w.cmp, w.op
	}
	ok, _, err := n.s.commit(ctx, t, cmps, ops...)
	if err != nil || ok {
		return err
	}
	for i, w := range batch {
		ok, _, err := n.s.commit(ctx, t, []clientv3.Cmp{w.cmp}, w.op)
		if err != nil {
			for _, rest := range batch[i:] {
				n.record(rest.note)
			}
			return err
		}
		if !ok {
			n.record(w.note)
		}
	}
	return nil
}
