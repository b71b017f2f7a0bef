package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/schema"
)

// restored is a history ready to follow.
type restored struct {
	hist     *schema.History
	follower *schema.MetaFollower
	source   string
	applied  int // changes applied while checking it against the pool
	// loadedLast is the history's last applied ts as restored, before
	// the changes applied while checking it.
	loadedLast uint64
	tables     int64 // table versions loaded
}

// loadReportEvery is how often a long load of a tenant's history logs how
// far it has got (a variable for the tests).
var loadReportEvery = 10 * time.Second

// reportLoad logs, every loadReportEvery until the returned stop is
// called, how far the load of key has got: a registry loading 1,000,000
// tables is otherwise silent for 10-20 s.
func (t *tenant) reportLoad(key string, p *schema.LoadProgress) (stop func()) {
	began := time.Now()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(loadReportEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n, total := p.Tables()
				if total == 0 {
					t.log.Info("loading the schema history: reading it", "key", key, "elapsed", time.Since(began).Round(time.Second))
					continue
				}
				t.log.Info("loading the schema history", "key", key, "table_versions_loaded", n, "table_versions_total", total,
					"elapsed", time.Since(began).Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// unusableError is a persisted history that must be skipped: it does not
// decode, or it does not fit the pool. Any other error (the store is
// unreachable) fails the restore, to be retried, rather than fall back.
type unusableError struct{ reason error }

func (e *unusableError) Error() string { return e.reason.Error() }
func (e *unusableError) Unwrap() error { return e.reason }

func unusable(format string, args ...any) error {
	return &unusableError{reason: fmt.Errorf(format, args...)}
}

// persistedKeys lists the tenant's persisted histories, oldest first,
// ignoring objects that are not named {last_applied_ts:020}.
func (t *tenant) persistedKeys(ctx context.Context) ([]string, error) {
	prefix := layout.SchemaHistoryPrefix(t.id)
	objs, err := objstore.ListAll(ctx, t.s.deps.Store, prefix, "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var keys []string
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		if _, err := strconv.ParseUint(name, 10, 64); err != nil || len(name) != 20 {
			t.log.Warn("ignoring a foreign object among persisted histories", "key", o.Key)
			continue
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// restore loads the newest persisted history that is usable, else builds
// one from the pool's schema snapshot, and positions a follower after it.
func (t *tenant) restore(ctx context.Context) (*restored, error) {
	pl := t.s.deps.Pool
	snapKey, snapTs, found, err := schema.PoolSnapshotKey(ctx, pl, t.id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("tenant %d has no schema snapshot in the pool yet (%s)", t.id, layout.PoolSchemaSnapshotPrefix(t.id))
	}
	keys, err := t.persistedKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(keys) - 1; i >= 0; i-- {
		progress := &schema.LoadProgress{}
		stop := t.reportLoad(keys[i], progress)
		r, err := t.tryPersisted(ctx, keys[i], snapTs, progress)
		stop()
		var u *unusableError
		if errors.As(err, &u) {
			t.s.m.restoreFallbacks.Inc()
			t.unusable = append(t.unusable, keys[i])
			t.log.Warn("persisted schema history unusable; falling back to an older one or the snapshot", "key", keys[i], "reason", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		t.s.m.restores.WithLabelValues("persisted").Inc()
		r.tables, _ = progress.Tables()
		return r, nil
	}
	progress := &schema.LoadProgress{}
	stop := t.reportLoad(snapKey, progress)
	h, err := schema.LoadFromPoolWith(ctx, pl, t.id, progress)
	stop()
	if err != nil {
		return nil, err
	}
	h.JobWait = t.s.cfg.JobWait
	f, err := t.s.followMeta(ctx, t.id, h.Resolved()+1)
	if err != nil {
		return nil, err
	}
	t.s.m.restores.WithLabelValues("snapshot").Inc()
	tables, _ := progress.Tables()
	return &restored{hist: h, follower: f, source: "snapshot:" + snapKey, loadedLast: h.LastApplied(), tables: tables}, nil
}

// tryPersisted decodes one persisted history and checks it against the
// pool: built from the pool's snapshot, the pool still holds the meta rows
// after its resolved ts, and the pool has read at least as far (a history
// ahead of the pool belongs to a pool that was replaced).
func (t *tenant) tryPersisted(ctx context.Context, key string, snapTs uint64, progress *schema.LoadProgress) (*restored, error) {
	data, err := t.s.deps.Store.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, unusable("%s disappeared", key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	h, err := schema.DecodeWith(key, data, progress)
	if err != nil {
		return nil, &unusableError{reason: err}
	}
	h.JobWait = t.s.cfg.JobWait
	if h.Tenant != t.id {
		return nil, unusable("%s holds tenant %d", key, h.Tenant)
	}
	if h.BaseTs() != snapTs {
		return nil, unusable("%s was built from a schema snapshot at %d, the pool's is at %d", key, h.BaseTs(), snapTs)
	}
	f, err := t.s.followMeta(ctx, t.id, h.Resolved()+1)
	if errors.Is(err, pool.ErrCompacted) {
		return nil, unusable("%s: the pool no longer holds the meta range after %d: %v", key, h.Resolved(), err)
	}
	if err != nil {
		return nil, err
	}
	b, err := f.Poll(ctx)
	if err != nil {
		return nil, err
	}
	if b.Resolved < h.Resolved() {
		return nil, unusable("%s has read the meta range up to %d, the pool only to %d", key, h.Resolved(), b.Resolved)
	}
	loadedLast := h.LastApplied()
	n, err := h.ApplyBatch(b)
	if err != nil {
		return nil, unusable("%s: %v", key, err)
	}
	return &restored{hist: h, follower: f, source: key, applied: n, loadedLast: loadedLast}, nil
}

// retentionFloor is the ts the retention window starts at: resolved's TSO
// physical time minus the retention.
func retentionFloor(resolved uint64, retention time.Duration) uint64 {
	phys, keep := resolved>>18, uint64(retention.Milliseconds())
	if retention <= 0 || phys <= keep {
		return 0
	}
	return (phys - keep) << 18
}

// persist applies retention and, if the history changed since it was last
// written, writes it as {last_applied_ts:020}, then deletes unusable and
// older files beyond KeepPersisted.
func (t *tenant) persist(ctx context.Context) error {
	t.lastPersist = t.s.deps.Now()
	t.mu.Lock()
	h := t.hist
	if h == nil {
		t.mu.Unlock()
		return nil
	}
	h.Truncate(retentionFloor(h.Resolved(), t.s.cfg.Retention))
	st := savedState{last: h.LastApplied(), resolved: h.Resolved(), floor: h.Floor()}
	t.mu.Unlock()
	if st == t.saved {
		return nil
	}
	start := time.Now()
	// Encode closes the history's last transaction (a write): readers
	// must wait.
	t.mu.Lock()
	data, err := h.Encode()
	t.mu.Unlock()
	if err != nil {
		t.s.m.persistErrors.Inc()
		return fmt.Errorf("encode: %w", err)
	}
	key := layout.SchemaHistoryPrefix(t.id) + layout.Pad(st.last)
	if err := t.s.deps.Store.Put(ctx, key, data); err != nil {
		t.s.m.persistErrors.Inc()
		return fmt.Errorf("write %s: %w", key, err)
	}
	t.s.m.persistSeconds.Observe(time.Since(start).Seconds())
	t.s.m.persistBytes.Observe(float64(len(data)))
	t.saved = st
	t.mu.Lock()
	t.persistedKey = key
	t.mu.Unlock()
	t.log.Debug("schema history persisted", "key", key, "bytes", len(data), "resolved_ts", st.resolved, "floor_ts", st.floor)
	return t.prune(ctx, key)
}

// prune deletes the persisted files found unusable at restore and all but
// the newest KeepPersisted others. Failures only leave files behind.
func (t *tenant) prune(ctx context.Context, written string) error {
	var errs []error
	for _, k := range t.unusable {
		if k == written {
			continue // overwritten with a good history
		}
		if err := t.s.deps.Store.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
		}
	}
	t.unusable = nil
	keys, err := t.persistedKeys(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for i := 0; i+t.s.cfg.KeepPersisted < len(keys); i++ {
		if err := t.s.deps.Store.Delete(ctx, keys[i]); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", keys[i], err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.s.m.persistErrors.Inc()
		return err
	}
	return nil
}
