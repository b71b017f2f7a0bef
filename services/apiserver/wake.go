package apiserver

import (
	"context"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/svc"
)

// Push instead of poll: the sorters bump a notice in etcd after each group
// publication (etcdx.PublishedKey); the api-server watches them all with one
// watch, forgets the remembered "not found" of the tenant's pool keys and
// wakes the tenant's caught-up pulls, which read at once. The notice names
// the publication (group and seq): s.heads keeps the newest announced of
// each group, so a pull that read it does not GET the next one, which is
// not written yet, until a notice names it or FallbackPollInterval passes
// (pool.Heads). Polling stays as the fallback: every FallbackPollInterval
// while the watch is up, every PollInterval while it is not (or without
// etcd), when nothing the notices said is believed any more.

// noticeHooks: what the api-server does with each notice, before the pulls
// of its tenant wake.
func (s *Service) noticeHooks() etcdx.NoticeHooks {
	return etcdx.NoticeHooks{
		Notice: func(n etcdx.Notice) {
			if n.Named() {
				s.heads.Announce(n.Tenant, n.Group, n.Seq)
			}
			s.cache.ForgetMissing(layout.PoolTenantPrefix(n.Tenant))
		},
		Lost: s.heads.Reset,
	}
}

// start follows the publication notices until the service stops.
func (s *Service) start(context.Context, *svc.Kernel) error {
	s.quota.start(s.stopping)
	if s.wake != nil {
		go s.wake.Run(s.stopping)
	}
	return nil
}

// waitData waits, after a round that found nothing more to read, for the
// tenant's next publication notice (wake, taken before the round) or the
// poll interval that applies, whichever comes first; retry > 0 caps the wait
// (the registry is behind the pool: it reads the same publication).
func (s *Service) waitData(ctx context.Context, wake <-chan struct{}, retry time.Duration) error {
	poll, fallback := s.cfg.PollInterval, s.cfg.FallbackPollInterval
	if retry > 0 {
		poll, fallback = min(poll, retry), min(fallback, retry)
	}
	notice, err := s.wake.Wait(ctx, wake, poll, fallback)
	switch {
	case s.stopping.Err() != nil:
		return errStopping
	case err != nil:
		return err
	case notice:
		s.m.pullWakes.WithLabelValues("notice").Inc()
	default:
		s.m.pullWakes.WithLabelValues("poll").Inc()
	}
	return nil
}

// registryRetryMin is the first wait of a pull whose rows are complete in the
// pool but not yet in the schema registry: both were woken by the same
// notice, and the registry is usually a GET behind.
const registryRetryMin = 5 * time.Millisecond

// registryBackoff is how long a caught-up pull may wait before asking the
// registry again: 0 (wait for a notice) when the registry is not what holds
// it, else a backoff from registryRetryMin doubling up to PollInterval.
func (p *pull) registryBackoff() time.Duration {
	if p.sch.known >= p.dataAt {
		p.regWait = 0
		return 0
	}
	p.regWait = min(max(2*p.regWait, registryRetryMin), p.s.cfg.PollInterval)
	return p.regWait
}
