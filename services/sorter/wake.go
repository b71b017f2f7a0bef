package sorter

import (
	"context"
	"sync/atomic"
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

// A tenant's publication also comes sooner than FlushInterval once
// FlushBytes of rows arrived for it since its last round began (fed): a
// round at full speed holds about that much, not whatever one interval
// brought, and the requests per MiB stay bounded all the same.

// fallbackPublish is how often a publisher looks without a kick.
const fallbackPublish = time.Second

// publisherWake is what a tenant's publisher waits on: kick, poked by
// every batch applied to one of the tenant's ranges, and fed, the bytes of
// rows those batches brought since its last round began.
type publisherWake struct {
	kick chan struct{}
	fed  atomic.Int64
}

// wake returns the tenant's publisherWake (created once, kept: one per
// tenant).
func (s *Service) wake(tenant uint64) *publisherWake {
	if w, ok := s.wakes.Load(tenant); ok {
		return w.(*publisherWake)
	}
	w, _ := s.wakes.LoadOrStore(tenant, &publisherWake{kick: make(chan struct{}, 1)})
	return w.(*publisherWake)
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
// fallback tick, then no sooner than FlushInterval after last unless w.fed
// reaches FlushBytes first (early). fallback reports that no kick came
// (the group may be idle).
func (s *Service) waitPublish(ctx context.Context, w *publisherWake, last time.Time) (fallback, early, ok bool) {
	t := time.NewTimer(fallbackPublish)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false, false
	case <-w.kick:
	case <-t.C:
		fallback = true
	}
	full := func() bool { return s.cfg.FlushBytes > 0 && w.fed.Load() >= s.cfg.FlushBytes }
	if d := time.Until(last.Add(s.cfg.FlushInterval)); d > 0 && !full() {
		t.Reset(d)
		for due := false; !due; {
			select {
			case <-ctx.Done():
				return false, false, false
			case <-t.C:
				due = true
			case <-w.kick: // rows arrived: due once they are FlushBytes
				if full() {
					return false, true, true
				}
			}
		}
	} else if d > 0 {
		early = true
	}
	return fallback, early, true
}
