package metaserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// metaServiceName is the gRPC health name of MetaService: SERVING on every
// ready member, since a standby serves by forwarding (proxy.go).
// metaLeaderHealthName is SERVING only on the leader, so a client or load
// balancer that wants the leader itself can find it without asking.
const (
	metaServiceName      = "tistream.meta.v1.MetaService"
	metaLeaderHealthName = "tistream.meta.v1.MetaService/leader"
)

// campaignLoop runs for the service's life: campaign, lead until the session
// ends, campaign again. Each attempt has its own session, so a lost lease
// (paused process, partition) ends leadership for good and a new campaign
// starts behind whoever took over.
func (s *Service) campaignLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.campaignOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		s.log.Warn("leader election attempt failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// campaignOnce waits to be elected, leads until the session or ctx ends,
// then resigns (on shutdown, so a standby takes over at once instead of
// after the TTL).
func (s *Service) campaignOnce(ctx context.Context) error {
	ttl := int(s.cfg.SessionTTL / time.Second)
	// The session outlives ctx on purpose: on shutdown it must still be
	// able to resign and revoke its lease.
	sess, err := concurrency.NewSession(s.etcd, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, etcdx.ElectionPrefix)
	s.election.Store(el)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	if err := el.Campaign(cctx, s.advertise); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-sess.Done():
			return errors.New("etcd session ended while campaigning")
		default:
		}
		return fmt.Errorf("campaign: %w", err)
	}
	t := &term{key: el.Key(), rev: el.Rev()}
	t.ctx, t.cancel = context.WithCancel(cctx)
	s.beginTerm(t)
	<-t.ctx.Done()
	s.endTerm(t)
	if ctx.Err() == nil {
		s.log.Warn("leadership lost: etcd session ended", "election_key", t.key)
		return nil
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if err := el.Resign(rctx); err != nil {
		s.log.Warn("resign leadership failed; the session's lease revocation ends it", "err", err)
	}
	return nil
}

// beginTerm makes this server the leader: RPCs are answered here, not
// forwarded, and the leader-only loops start.
func (s *Service) beginTerm(t *term) {
	s.log.Info("elected meta-server leader", "addr", s.advertise, "election_key", t.key, "rev", t.rev)
	s.notes.reset()
	s.cur.Store(t)
	s.m.leader.Set(1)
	s.SetServing(metaLeaderHealthName, true)
	t.spawn(func() { s.scheduleLoop(t) })
	t.spawn(func() { s.sealLoop(t) })
	t.spawn(func() { s.notes.flushLoop(t) })
	t.spawn(func() { s.retentionLoop(t) })
	t.spawn(func() { s.offboardLoop(t) })
	t.spawn(func() { s.usageLoop(t) })
	s.as.reset()
	t.spawn(func() { s.autoscaleLoop(t) })
}

// endTerm stops answering (calls are forwarded to the next leader) and
// waits for the leader-only loops.
func (s *Service) endTerm(t *term) {
	s.cur.CompareAndSwap(t, nil)
	s.m.leader.Set(0)
	s.SetServing(metaLeaderHealthName, false)
	t.cancel()
	t.wg.Wait()
	s.log.Info("meta-server leadership ended", "election_key", t.key)
}

// leading returns the current term, or nil when this server does not lead.
func (s *Service) leading() *term {
	t := s.cur.Load()
	if t == nil || t.ctx.Err() != nil {
		return nil
	}
	return t
}

// leaderAddr is the elected leader's advertised address ("" when none).
func (s *Service) leaderAddr(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if el := s.election.Load(); el != nil {
		if resp, err := el.Leader(ctx); err == nil && len(resp.Kvs) > 0 {
			return string(resp.Kvs[0].Value)
		}
		return ""
	}
	resp, err := s.etcd.Get(ctx, etcdx.ElectionPrefix+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}
