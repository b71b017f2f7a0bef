package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/schema"
)

// tenant is one followed tenant: a goroutine that restores and follows its
// history, and the history the RPCs read.
type tenant struct {
	s      *Service
	id     uint64
	label  string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu           sync.RWMutex
	hist         *schema.History // nil until loaded
	source       string
	restoredLast uint64

	// Owned by the follower goroutine (and by Stop once it has ended).
	saved        savedState
	lastPersist  time.Time
	unusable     []string  // persisted objects found unusable at restore
	resume       *restored // a consistent history to resume after a failed poll
	persistedKey string
}

// savedState is what the last persisted file holds, to skip writes that
// would change nothing.
type savedState struct {
	last, resolved, floor uint64
}

func newTenant(s *Service, id uint64) *tenant {
	label := strconv.FormatUint(id, 10)
	return &tenant{s: s, id: id, label: label, log: s.log.With("tenant", id), done: make(chan struct{})}
}

func (t *tenant) start(ctx context.Context) {
	ctx, t.cancel = context.WithCancel(ctx)
	go t.run(ctx)
}

// stop ends the follower and waits for it (at most until ctx ends).
func (t *tenant) stop(ctx context.Context) error {
	t.cancel()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tenant %d follower still running: %w", t.id, ctx.Err())
	}
}

// run follows the tenant until ctx ends, restarting after failures with a
// capped exponential backoff. The history loaded last stays served while a
// new one is restored: it is right for every ts up to its resolved ts.
func (t *tenant) run(ctx context.Context) {
	defer close(t.done)
	backoff := t.s.cfg.RetryBackoff
	for {
		progressed, err := t.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		t.s.m.followErrors.Inc()
		if progressed {
			backoff = t.s.cfg.RetryBackoff
		}
		t.log.Error("schema follower failed; restarting", "err", err, "retry_in", backoff)
		if !wait(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, t.s.cfg.MaxRetryBackoff)
	}
}

// follow restores the history and applies the meta range as the pool
// publishes it, persisting every PersistInterval. progressed tells whether
// it got as far as serving a restored history. After a failed poll the
// history is still consistent (nothing of the failed batch was applied):
// the next follow resumes it with a new follower instead of restoring an
// older one.
func (t *tenant) follow(ctx context.Context) (progressed bool, err error) {
	r := t.resume
	t.resume = nil
	if r != nil {
		f, err := t.s.followMeta(ctx, t.id, r.hist.Resolved()+1)
		switch {
		case errors.Is(err, pool.ErrCompacted):
			t.log.Warn("cannot resume the schema history; restoring it", "err", err)
			r = nil
		case err != nil:
			t.resume = r // the pool is unreachable: try again
			return false, fmt.Errorf("resume: %w", err)
		default:
			r.follower = f
			t.log.Info("schema history resumed", "resolved_ts", r.hist.Resolved())
		}
	}
	if r == nil {
		began := time.Now()
		if r, err = t.restore(ctx); err != nil {
			return false, fmt.Errorf("restore: %w", err)
		}
		r.hist.IndexTables() // before its first listing, which would wait for it
		t.mu.Lock()
		t.hist, t.source, t.restoredLast = r.hist, r.source, r.loadedLast
		t.mu.Unlock()
		t.s.m.changes.Add(float64(r.applied))
		t.observeLag(r.hist.Resolved())
		t.log.Info("schema history loaded", "source", r.source, "table_versions", r.tables, "took", time.Since(began).Round(time.Millisecond),
			"last_applied_ts", r.hist.LastApplied(), "resolved_ts", r.hist.Resolved(), "floor_ts", r.hist.Floor())
	}
	if t.lastPersist.IsZero() {
		t.lastPersist = t.s.deps.Now()
	}
	for {
		if t.s.deps.Now().Sub(t.lastPersist) >= t.s.cfg.PersistInterval {
			if err := t.persist(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("persisting the schema history failed; retrying next interval", "err", err)
			}
		}
		wake := t.s.wake.Chan(t.id) // before reading: a notice during the poll counts
		b, err := r.follower.Poll(ctx)
		if err != nil {
			t.resume = r
			return true, fmt.Errorf("poll the meta range: %w", err)
		}
		t.mu.Lock()
		n, err := r.hist.ApplyBatch(b)
		t.mu.Unlock()
		if err != nil {
			return true, fmt.Errorf("apply the meta range: %w", err)
		}
		t.s.m.changes.Add(float64(n))
		t.observeLag(b.Resolved)
		if b.CaughtUp && !t.s.waitMeta(ctx, wake) {
			return true, ctx.Err()
		}
	}
}

func (t *tenant) observeLag(resolved uint64) {
	lag := t.s.deps.Now().Sub(time.UnixMilli(int64(resolved >> 18)))
	t.s.m.resolvedLag.WithLabelValues(t.label).Set(lag.Seconds())
}

func (t *tenant) status() TenantStatus {
	t.mu.RLock()
	defer t.mu.RUnlock()
	st := TenantStatus{Tenant: t.id, Source: t.source, RestoredLastApplied: t.restoredLast, PersistedKey: t.persistedKey}
	if h := t.hist; h != nil {
		st.Loaded = true
		st.LastApplied, st.Resolved, st.Floor, st.Changes = h.LastApplied(), h.Resolved(), h.Floor(), h.ChangeCount()
	}
	return st
}
