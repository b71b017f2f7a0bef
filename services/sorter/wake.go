package sorter

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/etcdx"
)

// Push instead of poll: a tenant's publisher waits for a kick, which every
// batch applied to one of the tenant's ranges gives (data or resolved ts
// arriving may move a range's flush target), and publishes at once unless
// the group published less than FlushInterval ago (then it waits for the
// rest of the interval: requests per MiB stay bounded however often the
// stores cut their files). A slow tick (fallbackPublish) catches what no
// batch announces (a staged flush that was still pending, a retry after an
// error). After each publication the notifier bumps the tenant's notice in
// etcd (etcdx.PublishedKey), which wakes the api-servers' pulls and the
// schema registry.

// fallbackPublish is how often a publisher looks without a kick.
const fallbackPublish = time.Second

// kick returns the tenant's kick channel (created once, kept: one per tenant).
func (s *Service) kick(tenant uint64) chan struct{} {
	if c, ok := s.kicks.Load(tenant); ok {
		return c.(chan struct{})
	}
	c, _ := s.kicks.LoadOrStore(tenant, make(chan struct{}, 1))
	return c.(chan struct{})
}

// startNotifier starts the publication notices (they use the current worker
// lease, so they go with the sorter).
func (s *Service) startNotifier() {
	s.notifier = etcdx.NewNotifier(s.etcd, s.cfg.ID, func() clientv3.LeaseID {
		if r := s.worker.Get(); r != nil {
			return r.Session.Lease()
		}
		return 0
	}, func(err error) {
		s.pm.notices.WithLabelValues("error").Inc()
		s.log.Debug("publication notice not written", "err", err)
	})
	go s.notifier.Run(s.rootCtx)
}

// waitPublish waits until the next publication is due: a kick or the
// fallback tick, then no sooner than FlushInterval after last. fallback
// reports that no kick came (the group may be idle).
func (s *Service) waitPublish(ctx context.Context, kick <-chan struct{}, last time.Time) (fallback, ok bool) {
	t := time.NewTimer(fallbackPublish)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-kick:
	case <-t.C:
		fallback = true
	}
	if d := time.Until(last.Add(s.cfg.FlushInterval)); d > 0 {
		t.Reset(d)
		select {
		case <-ctx.Done():
			return false, false
		case <-t.C:
		}
	}
	return fallback, true
}
