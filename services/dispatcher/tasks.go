package dispatcher

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// supervise follows the stream tasks under the current registration. When
// the lease is lost it stops every stream at once (they are no longer ours)
// and registers again; when ctx ends (Stop) it leaves the streams to Stop's
// graceful drain.
func (s *Service) supervise(ctx context.Context) {
	defer close(s.superDone)
	for {
		reg := s.worker.Get()
		fctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-reg.Done():
				cancel()
			case <-fctx.Done():
			}
		}()
		follow(fctx, s.etcd, s.log, etcdx.StreamsPrefix, taskFollower{s: s, lease: reg.Session.Lease()})
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.m.leaseLost.Inc()
		s.log.Warn("worker lease lost, stopping every stream and registering again")
		s.stopStreams(s.takeStreams(nil), nil)
		bo := newBackoff(s.cfg.RetryMin, s.cfg.RetryMax)
		for {
			reg, err := s.register(ctx)
			if err == nil {
				s.worker.Set(reg)
				break
			}
			s.log.Warn("registration failed, retrying", "err", err)
			if !bo.wait(ctx) {
				return
			}
		}
	}
}

// taskFollower applies stream task changes: run the streams owned by this
// dispatcher at their epoch, stop the others.
type taskFollower struct {
	s     *Service
	lease clientv3.LeaseID
}

func (f taskFollower) reset(kvs []*mvccpb.KeyValue, _ int64) {
	owned := map[streamKey]bool{}
	for _, kv := range kvs {
		if key, ok := f.put(kv); ok {
			owned[key] = true
		}
	}
	f.s.stopStreams(f.s.takeStreams(func(k streamKey) bool { return !owned[k] }), nil)
}

func (f taskFollower) apply(ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		if key, ok := parseStreamKey(f.s, ev.Kv.Key); ok {
			f.s.stopStreams(f.s.takeStreams(func(k streamKey) bool { return k == key }), nil)
		}
		return
	}
	f.put(ev.Kv)
}

// put starts, keeps or stops the stream of one task; it reports whether
// this dispatcher owns it.
func (f taskFollower) put(kv *mvccpb.KeyValue) (streamKey, bool) {
	key, ok := parseStreamKey(f.s, kv.Key)
	if !ok {
		return key, false
	}
	task := &metav1.StreamTask{}
	if err := proto.Unmarshal(kv.Value, task); err != nil {
		f.s.log.Warn("ignoring undecodable stream task", "key", string(kv.Key), "err", err)
		return key, false
	}
	if task.Owner != f.s.cfg.ID {
		f.s.stopStreams(f.s.takeStreams(func(k streamKey) bool { return k == key }), nil)
		return key, false
	}
	if task.ClusterId == 0 {
		f.s.log.Warn("stream task has no cluster id, not running it", "tenant", key.tenant, "store", key.store)
		return key, false
	}
	f.s.ensure(key, task, f.lease)
	return key, true
}

func parseStreamKey(s *Service, k []byte) (streamKey, bool) {
	tenant, store, err := etcdx.ParseTwoIDs(string(k), etcdx.StreamsPrefix)
	if err != nil {
		s.log.Warn("ignoring malformed stream task key", "key", string(k), "err", err)
		return streamKey{}, false
	}
	return streamKey{tenant, store}, true
}

// ensure runs the stream of task at its epoch, replacing a stream of
// another epoch or lease; a stream already there at that epoch is only
// told of the task's latest file (woken when it is newer; one that fenced
// itself stays stopped until the task changes).
func (s *Service) ensure(key streamKey, task *metav1.StreamTask, lease clientv3.LeaseID) {
	s.mu.Lock()
	old := s.streams[key]
	if old != nil && old.epoch == task.Epoch && old.cluster == task.ClusterId && old.lease == lease {
		s.mu.Unlock()
		old.notify(task.LatestSeq, task.LatestMaxTs, false)
		return
	}
	if old != nil {
		delete(s.streams, key)
	}
	s.mu.Unlock()
	if old != nil {
		s.stopStreams([]*stream{old}, nil)
	}
	st := newStream(s, key, task.ClusterId, task.Epoch, lease)
	st.notes.note(task.LatestSeq, task.LatestMaxTs, false)
	s.mu.Lock()
	s.streams[key] = st
	s.mu.Unlock()
	s.m.streamsOwned.Inc()
	st.start()
}

// takeStreams removes and returns the streams match selects (nil = all).
func (s *Service) takeStreams(match func(streamKey) bool) []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*stream
	for k, st := range s.streams {
		if match == nil || match(k) {
			out = append(out, st)
			delete(s.streams, k)
		}
	}
	return out
}

// stopStreams stops streams concurrently: at once (ctx nil), or gracefully
// within ctx.
func (s *Service) stopStreams(sts []*stream, ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Go(func() {
			if ctx == nil {
				st.stopHard()
			} else {
				st.stopGraceful(ctx)
			}
			s.m.streamsOwned.Dec()
		})
	}
	wg.Wait()
}

func (s *Service) lookup(tenant, store uint64) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[streamKey{tenant, store}]
}

// register puts this dispatcher's WorkerInfo under a new lease.
func (s *Service) register(ctx context.Context) (*etcdx.Registration, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return etcdx.Register(rctx, s.etcd, &metav1.WorkerInfo{
		Id: s.cfg.ID, Kind: metav1.WorkerKind_WORKER_KIND_DISPATCHER, Addr: s.advertise,
		StartedUnixMs: time.Now().UnixMilli(),
	}, s.cfg.LeaseTTL)
}
