package sorter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
	"github.com/tistream/tistream/libs/watermark"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Deps are what ranges of one sorter process share.
type Deps struct {
	Pool      objstore.Store // the committed data pool
	Snapshots objstore.Store // where snapshots go (often the same store)
	Buffers   sortbuf.Store
	Budget    *txnmatch.Budget
	Owner     string // this sorter's identity, written into what it publishes
	// Group returns the group writer that publishes this process's ranges
	// of a tenant (committed data pool format 2: one publication per flush
	// for all of them). Nil gives each range a group of its own, closed
	// with it (tests, tools).
	Group func(tenant uint64) (*pool.GroupWriter, error)
}

// processStart and privateGroups make the ids of private groups unique.
var (
	processStart  = time.Now().UnixMilli()
	privateGroups atomic.Uint64
)

// group returns the group a range of tenant is published in.
func (d Deps) group(tenant uint64) (*pool.GroupWriter, error) {
	if d.Group != nil {
		return d.Group(tenant)
	}
	id := pool.GroupID(d.Owner, uint64(processStart), privateGroups.Add(1))
	return pool.NewGroupWriter(d.Pool, tenant, id, d.Owner, pool.GroupOptions{})
}

// openRange takes range id of tenant over at epoch in the process's group
// (pool.OpenRange: the previous owner is fenced).
func openRange(ctx context.Context, deps Deps, tenant, id, epoch uint64) (*pool.RangeWriter, error) {
	g, err := deps.group(tenant)
	if err != nil {
		return nil, err
	}
	w, err := pool.OpenRange(ctx, g, tenant, id, epoch)
	if err != nil && deps.Group == nil {
		g.Close()
	}
	return w, err
}

// Stats counts what a range did; the bad-input counters are also metrics.
type Stats struct {
	Batches     int64
	Duplicates  int64 // batches skipped: their store position was already applied
	Rows        int64
	LateCommits int64 // commits at or below the watermark inherited at Create/Restore: possible replays, dropped
	RefusedLate int64 // batches refused with ErrLateCommit
	// ProvenDuplicates are commits below the published watermark found
	// already published (re-uploads), dropped.
	ProvenDuplicates int64
	Flushes          int64
	RowsFlushed      int64
	DuplicatePends   int64 // pending commits found already in the buffer and dropped
	Snapshots        int64 // snapshots written
	SnapshotsSkipped int64 // SnapshotIfChanged calls that found the content unchanged
	SnapshotBytes    int64 // size of the last snapshot written
	SnapshotsDeleted int64 // older snapshots deleted after a newer one was written
	// SnapshotDeleteErrors counts failed deletions (retried after the next
	// snapshot; an old snapshot left behind costs storage, nothing else).
	SnapshotDeleteErrors int64
}

// ErrSealed is returned for a range whose log ends with SEAL: it was split
// or merged and takes no more input.
var ErrSealed = errors.New("sorter: range is sealed")

// ErrLateCommit is matched (errors.Is) by an Apply error for a batch with a
// commit at or below the watermark this range instance itself published
// and above every ts it inherited at Create/Restore (see checkLate):
// applying it would publish a row below a watermark readers may have
// passed — a lost row. Apply leaves the range
// unchanged; the caller refuses the batch (the stream feeding it stops).
var ErrLateCommit = errors.New("commit at or below the published watermark")

// LateCommitError details ErrLateCommit.
type LateCommitError struct {
	Tenant, Range, Store, Seq uint64
	Key                       []byte
	StartTs, CommitTs         uint64
	Published                 uint64
}

func (e *LateCommitError) Error() string {
	return fmt.Sprintf("range %d of tenant %d: store %d file %d: commit of key %x start_ts %d commit_ts %d at or below the published watermark %d",
		e.Range, e.Tenant, e.Store, e.Seq, e.Key, e.StartTs, e.CommitTs, e.Published)
}

func (e *LateCommitError) Is(target error) bool { return target == ErrLateCommit }

// Range is one sorter range. It is driven by one goroutine at a time.
type Range struct {
	deps       Deps
	tenant, id uint64
	start, end []byte
	openedAt   uint64
	wm         *watermark.Map
	match      *txnmatch.Matcher
	buf        sortbuf.Buffer
	batch      sortbuf.Batch
	writer     *pool.RangeWriter
	applied    map[uint64]uint64 // store id -> last store file seq applied
	published  uint64
	// inherited bounds the commits of input this instance may see again
	// (replays): the published watermark and the highest ts of the
	// watermark map at Create/Restore (a merge's map can be ahead of its
	// store positions).
	inherited uint64
	snapNum   uint64
	// snapKeys are the range's snapshots in the store, oldest first (those
	// listed at Restore, then those written); all but the newest
	// keepSnapshots are deleted after each write (pruneSnapshots).
	snapKeys []string
	stats    Stats
	sealed   bool
	// staged is the flush prepared for the group's next publication, until
	// it is committed (Prepare, Commit).
	staged *pool.Staged

	// snapDigest is the content of the last snapshot written or restored
	// (SnapshotIfChanged).
	snapDigest snapshotDigest

	// notes describe what the watermark map set aside that can hold the
	// watermark back (an END before its START, an incarnation a full
	// leader list left out), until TakeNotes.
	notes []string
}

// maxNotes bounds the notes a range keeps between two TakeNotes.
const maxNotes = 32

// note records a diagnostic note (see Range.notes).
func (r *Range) note(format string, args ...any) {
	if len(r.notes) < maxNotes {
		r.notes = append(r.notes, fmt.Sprintf(format, args...))
	}
}

// TakeNotes returns and clears the range's notes: what its watermark map
// set aside since the last call that can hold the watermark back, each
// naming the store file and incarnation (for the sorter's log).
func (r *Range) TakeNotes() []string {
	n := r.notes
	r.notes = nil
	return n
}

// Create opens a new range in the pool (its OPEN entry) and returns it empty.
func Create(ctx context.Context, deps Deps, spec pool.RangeSpec, epoch uint64) (*Range, error) {
	g, err := deps.group(spec.Tenant)
	if err != nil {
		return nil, err
	}
	w, err := pool.CreateRange(ctx, g, spec, epoch)
	if err != nil {
		if deps.Group == nil {
			g.Close()
		}
		return nil, err
	}
	return newRange(deps, w, nil)
}

func newRange(deps Deps, w *pool.RangeWriter, wm *watermark.Map) (*Range, error) {
	start, end, openedAt := w.Bounds()
	if wm == nil {
		var err error
		if wm, err = watermark.New(start, end); err != nil {
			return nil, err
		}
	}
	r := &Range{deps: deps, start: start, end: end, openedAt: openedAt, wm: wm, writer: w,
		applied: map[uint64]uint64{}, published: w.Watermark(), inherited: max(w.Watermark(), wm.MaxTs())}
	r.tenant, r.id = tenantAndID(w)
	r.buf = deps.Buffers.Buffer(r.uid())
	r.batch = r.buf.NewBatch()
	r.match = txnmatch.New(r.buf.Spill(), deps.Budget, r.batch.Add)
	return r, nil
}

func tenantAndID(w *pool.RangeWriter) (uint64, uint64) { return w.Tenant(), w.ID() }

// uid names the range's buffer: unique per (tenant, range) in a process.
func (r *Range) uid() uint64 { return r.tenant<<40 | r.id }

// Published is the watermark the range has published to the pool.
func (r *Range) Published() uint64 { return r.published }

// Stats returns the range's counters.
func (r *Range) Stats() Stats { return r.stats }

// WatermarkCounters are the watermark map's counts of input it ignored
// (stale or duplicate STARTs, resolved ts going backwards, ...).
func (r *Range) WatermarkCounters() watermark.Counters { return r.wm.Counters() }

// Watermark is the watermark map's (published, monotonic) watermark.
func (r *Range) Watermark() uint64 { return r.wm.Watermark() }

// Applied returns the last store file seq applied per store.
func (r *Range) Applied() map[uint64]uint64 { return r.applied }

// Tenant is the range's tenant.
func (r *Range) Tenant() uint64 { return r.tenant }

// ID is the range id.
func (r *Range) ID() uint64 { return r.id }

// Epoch is the owner epoch the range writes the pool with.
func (r *Range) Epoch() uint64 { return r.writer.Epoch() }

// Span is the range's key range (end nil = unbounded) and its opened-at ts.
func (r *Range) Span() (start, end []byte, openedAt uint64) { return r.start, r.end, r.openedAt }

// HasV1Log reports whether the range's log held committed data pool
// format 1 FLUSH entries when it was taken (range log retention still has
// those to compact).
func (r *Range) HasV1Log() bool { return r.writer.HasV1Flushes() }

// LogSeq is the seq of the last entry of the range's log.
func (r *Range) LogSeq() uint64 { return r.writer.Seq() }

// Sealed reports whether the range was sealed (split or merged) by this
// process.
func (r *Range) Sealed() bool { return r.sealed }

// Matcher describes the range's prewrite buffer.
func (r *Range) Matcher() txnmatch.Stats { return r.match.Stats() }

// Buffer is an account of what the range's sort buffer holds (read only;
// the sorter's load report, services/sorter/load.go).
func (r *Range) Buffer() sortbuf.BufferStats { return r.buf.Stats() }

// Apply applies one store file's events for this range, in order. A batch
// at or below the position already applied for its store is a redelivery
// and is skipped whole.
func (r *Range) Apply(b *route.Batch) error {
	if r.sealed {
		return fmt.Errorf("range %d of tenant %d: %w", r.id, r.tenant, ErrSealed)
	}
	if b.Pos.Seq <= r.applied[b.Pos.Store] {
		r.stats.Duplicates++
		return nil
	}
	if err := r.checkLate(b); err != nil {
		r.stats.RefusedLate++
		return err
	}
	defer r.match.Settle() // the matcher's charges, once a batch (txnmatch.Budget)
	for i := range b.Events {
		if err := r.applyEvent(b.Pos, &b.Events[i]); err != nil {
			return fmt.Errorf("range %d of tenant %d: store %d file %d: %w", r.id, r.tenant, b.Pos.Store, b.Pos.Seq, err)
		}
	}
	r.wm.Progress(b.Pos.Store, b.Pos.Seq)
	if err := r.batch.Commit(); err != nil {
		return fmt.Errorf("range %d of tenant %d: write sorted rows: %w", r.id, r.tenant, err)
	}
	r.applied[b.Pos.Store] = b.Pos.Seq
	r.stats.Batches++
	return nil
}

// checkLate refuses a batch with a commit above the inherited bound and at
// or below the published watermark, unless the pool proves it a duplicate:
// the same row (key, start_ts, commit_ts) is already published in this
// range's log. Duplicates are legitimate: a new leader re-writes a crashed
// leader's events it cannot prove were uploaded (store-file spec, rule 3);
// they are then dropped and counted (ProvenDuplicates, LateCommits). A
// commit at or below the inherited bound may be a replay of input a previous
// owner (or the parent of a split or merge) applied: it is dropped and
// counted (LateCommits) when at or below the published watermark, as before.
func (r *Range) checkLate(b *route.Batch) error {
	bound := r.bound()
	if bound <= r.inherited {
		return nil
	}
	var late []*cdcpb.Event_Row
	lo, hi := uint64(0), uint64(0)
	for i := range b.Events {
		row := b.Events[i].Row
		if b.Events[i].Kind != route.KindRow || row == nil {
			continue
		}
		if (row.Type == cdcpb.Event_COMMIT || row.Type == cdcpb.Event_COMMITTED) && row.CommitTs > r.inherited && row.CommitTs <= bound {
			if len(late) == 0 || row.CommitTs < lo {
				lo = row.CommitTs
			}
			hi = max(hi, row.CommitTs)
			late = append(late, row)
		}
	}
	if len(late) == 0 {
		return nil
	}
	have, err := r.publishedBetween(lo, hi)
	if err != nil {
		return fmt.Errorf("range %d of tenant %d: store %d file %d: look up commits below the published watermark in the pool: %w",
			r.id, r.tenant, b.Pos.Store, b.Pos.Seq, err)
	}
	for _, row := range late {
		if !have[publishedRow{string(row.Key), row.StartTs, row.CommitTs}] {
			// The key is copied: the batch's memory is reused once applied.
			return &LateCommitError{Tenant: r.tenant, Range: r.id, Store: b.Pos.Store, Seq: b.Pos.Seq, Key: bytes.Clone(row.Key),
				StartTs: row.StartTs, CommitTs: row.CommitTs, Published: bound}
		}
	}
	r.stats.ProvenDuplicates += int64(len(late))
	return nil
}

// publishedRow identifies a published row.
type publishedRow struct {
	key               string
	startTs, commitTs uint64
}

// publishedBetween returns the rows the range has published with commit_ts
// in [lo, hi], in one read of its log from lo up to the first chunk whose
// watermark covers hi (rows with commit_ts <= W are all in chunks up to the
// first one with watermark >= W). Rare (only for commits below the
// published watermark), so it reads the pool directly. Compacted data
// proves nothing: its rows are simply not in the set.
func (r *Range) publishedBetween(lo, hi uint64) (map[publishedRow]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	have := map[publishedRow]bool{}
	rd, err := pool.OpenRangeReader(ctx, r.deps.Pool, r.tenant, r.id, lo)
	if errors.Is(err, pool.ErrCompacted) {
		return have, nil
	}
	if err != nil {
		return nil, err
	}
	for {
		c, ok, err := rd.Next(ctx)
		if errors.Is(err, pool.ErrCompacted) {
			return have, nil
		}
		if err != nil || !ok {
			return have, err
		}
		for i := range c.Rows {
			if pr := &c.Rows[i]; pr.CommitTs <= hi {
				have[publishedRow{string(pr.Key), pr.StartTs, pr.CommitTs}] = true
			}
		}
		if c.Watermark >= hi || c.Sealed {
			return have, nil
		}
	}
}

// applyEvent applies one event read from store's stream: the watermark map
// learns which store leads an incarnation, so that only its leader (or a
// proven takeover) ends it.
func (r *Range) applyEvent(pos route.Position, ev *route.Event) error {
	store := pos.Store
	switch ev.Kind {
	case route.KindRegionStart:
		preds := make([]watermark.Ref, len(ev.Preds))
		for i, p := range ev.Preds {
			preds[i] = watermark.Ref(p)
		}
		r.wm.StartFrom(store, watermark.Ref(ev.Inc), ev.Start, ev.End, preds)
	case route.KindRegionEnd:
		var tk *watermark.Takeover
		if ev.TakeoverStore != 0 {
			tk = &watermark.Takeover{Store: ev.TakeoverStore, ThroughSeq: ev.TakeoverSeq}
		}
		before := r.wm.Counters()
		r.wm.EndFrom(store, watermark.Ref(ev.Inc), ev.Start, ev.End, ev.Ts, tk)
		after := r.wm.Counters()
		switch {
		case after.EarlyEnds+after.EarlyDropped > before.EarlyEnds+before.EarlyDropped:
			r.note("store %d file %d: END of %s before its START (kept for it)", store, pos.Seq, watermark.Ref(ev.Inc))
		case after.ForeignEnd > before.ForeignEnd:
			r.note("store %d file %d: END of %s, which another store leads (ignored)", store, pos.Seq, watermark.Ref(ev.Inc))
		}
	case route.KindResolved:
		for _, ref := range ev.Refs {
			r.wm.ResolvedFrom(store, watermark.Ref(ref), ev.Ts)
		}
	case route.KindLeaderResolved:
		r.wm.LeaderResolvedFrom(store, ev.Ts, wmRefs(ev.Refs))
	case route.KindLeaders:
		if unled := r.wm.LeadersFrom(store, wmRefs(ev.Refs)); len(unled) > 0 {
			r.note("store %d file %d: the full leader list leaves out %v, which the store led (no longer led)", store, pos.Seq, unled)
		}
	case route.KindRow:
		return r.applyRow(ev.Row)
	}
	return nil
}

// wmRefs converts routed incarnation names to the watermark map's.
func wmRefs(refs []route.Ref) []watermark.Ref {
	out := make([]watermark.Ref, len(refs))
	for i, r := range refs {
		out[i] = watermark.Ref(r)
	}
	return out
}

func opOf(t cdcpb.Event_Row_OpType) sortbuf.Op {
	if t == cdcpb.Event_Row_DELETE {
		return sortbuf.OpDelete
	}
	return sortbuf.OpPut
}

func (r *Range) applyRow(row *cdcpb.Event_Row) error {
	r.stats.Rows++
	switch row.Type {
	case cdcpb.Event_PREWRITE:
		return r.match.Prewrite(row.Key, opOf(row.OpType), row.Value, row.OldValue, row.StartTs, row.Generation)
	case cdcpb.Event_ROLLBACK:
		return r.match.Rollback(row.Key, row.StartTs)
	case cdcpb.Event_COMMIT:
		if row.CommitTs <= r.bound() {
			// Already published (or lost upstream): never publish it twice.
			// Its prewrite, re-sent by a new leader or restored from an
			// older snapshot, can never match now: the matcher drops it,
			// also one that comes later (txnmatch.Matcher.DropCommit), or
			// it stays in the matcher, and in every snapshot, forever.
			r.stats.LateCommits++
			return r.match.DropCommit(row.Key, row.StartTs, row.CommitTs)
		}
		return r.match.Commit(row.Key, opOf(row.OpType), row.StartTs, row.CommitTs)
	case cdcpb.Event_COMMITTED:
		if row.CommitTs <= r.bound() {
			r.stats.LateCommits++
			return nil
		}
		return r.match.Committed(sortbuf.Row{CommitTs: row.CommitTs, StartTs: row.StartTs, Op: opOf(row.OpType),
			Key: row.Key, Value: row.Value, OldValue: row.OldValue})
	}
	return nil
}

// Target is the watermark a flush would publish now: the watermark map's,
// held below any commit still waiting for its prewrite (flushing past it
// would lose the row).
func (r *Range) Target() (uint64, error) {
	t := r.wm.Watermark()
	if p := r.match.MinPendingCommit(); p != 0 && p <= t {
		if err := r.dropDuplicatePending(t); err != nil {
			return 0, err
		}
		if p = r.match.MinPendingCommit(); p != 0 && p <= t {
			t = p - 1
		}
	}
	return t, nil
}

// dropDuplicatePending drops pending commits at or below t whose row is
// already buffered: a redelivered commit after its match.
func (r *Range) dropDuplicatePending(t uint64) error {
	type pend struct {
		key         []byte
		start, comm uint64
	}
	var dups []pend
	var ferr error
	r.match.PendingCommits(func(key []byte, startTs, commitTs uint64) bool {
		if commitTs > t {
			return true
		}
		has, err := r.buf.Has(commitTs, startTs, key)
		if err != nil {
			ferr = err
			return false
		}
		if has {
			dups = append(dups, pend{append([]byte(nil), key...), startTs, commitTs})
		}
		return true
	})
	for _, d := range dups {
		r.match.DropPendingCommit(d.key, d.start)
		r.stats.DuplicatePends++
	}
	return ferr
}

// Flushing is two-phase: Prepare stages the rows up to the target (the
// range keeps applying batches meanwhile), the group writer publishes the
// staged flushes of all its ranges in one publication, then Commit tells
// the range it is durable (it deletes the flushed rows, forgets the
// matcher's state below them and moves Published). Until then the staged
// watermark bounds late commits as Published does.

// bound is the watermark below which a commit is late: the published one,
// or the staged one while a flush is staged.
func (r *Range) bound() uint64 {
	if r.staged != nil && !r.staged.Fenced() {
		return max(r.published, r.staged.Watermark)
	}
	return r.published
}

// Prepare stages a flush of everything up to min(Target, limit) above the
// published watermark for the group's next publication; nil when there is
// nothing to publish, or a staged flush is still waiting for its
// publication. A staged flush whose publication is over is committed first.
func (r *Range) Prepare(limit uint64) (*pool.Staged, error) {
	if r.sealed {
		return nil, fmt.Errorf("range %d of tenant %d: %w", r.id, r.tenant, ErrSealed)
	}
	if st := r.staged; st != nil {
		if st.Pending() {
			return nil, nil
		}
		if err := r.Commit(st); err != nil {
			return nil, err
		}
	}
	t, err := r.Target()
	if err != nil {
		return nil, err
	}
	t = min(t, limit)
	prev := r.writer.Watermark() // durable: what any publication already holds
	if t <= prev {
		return nil, nil
	}
	rows := func(yield func(*pool.Row) error) error {
		var pr pool.Row // refilled for every row: RowSource's yield keeps neither it nor its slices
		return r.buf.Scan(t, func(s sortbuf.Row) error {
			if s.CommitTs <= prev {
				return nil
			}
			pr = pool.Row{CommitTs: s.CommitTs, StartTs: s.StartTs, Op: poolOp(s.Op), Key: s.Key, Value: s.Value, OldValue: s.OldValue}
			return yield(&pr)
		})
	}
	opts := pool.FlushOptions{SizeHint: int(min(r.buf.Stats().Bytes, 256<<20))} // an estimate: the buffer may hold rows above t
	if sz, ok := r.buf.(sortbuf.Sizer); ok {
		if n, bytes, ok := sz.SizeUpTo(t); ok {
			opts = pool.FlushOptions{SizeHint: int(bytes), Rows: n} // exact (rows at or below prev included: a bound)
		}
	}
	st, err := r.writer.Stage(t, rows, opts)
	if err != nil {
		return nil, fmt.Errorf("range %d of tenant %d: stage flush: %w", r.id, r.tenant, err)
	}
	r.staged = st
	return st, nil
}

// Commit ends a staged flush after its group's publication: when it is
// durable, the range deletes the flushed rows, forgets what the matcher
// kept for them and publishes up to its watermark; a flush that was not
// published is staged again by the next Prepare. It fails with
// pool.ErrFenced when a newer owner fenced the range out of the group: the
// caller drops the range.
func (r *Range) Commit(st *pool.Staged) error {
	if st == r.staged {
		r.staged = nil
	}
	switch {
	case st.Fenced():
		return fmt.Errorf("range %d of tenant %d: fenced out of group %s by a newer owner: %w", r.id, r.tenant, r.writer.Group().ID(), pool.ErrFenced)
	case !st.Done() || st.Watermark <= r.published:
		return nil
	}
	if err := r.buf.DeleteUpTo(st.Watermark); err != nil {
		return fmt.Errorf("range %d of tenant %d: delete flushed rows: %w", r.id, r.tenant, err)
	}
	r.published = st.Watermark
	r.match.Forget(st.Watermark)
	r.stats.Flushes++
	r.stats.RowsFlushed += int64(st.Rows())
	return nil
}

// Flush publishes everything up to Target if it moved, at once, in a
// publication of its own group (the group writer's batching is for
// Prepare/Commit). It returns whether anything was published.
func (r *Range) Flush(ctx context.Context) (bool, error) { return r.FlushTo(ctx, ^uint64(0)) }

// FlushTo is Flush publishing at most limit: the range can be held at a
// watermark another range has to reach too (a merge aligns its parents).
func (r *Range) FlushTo(ctx context.Context, limit uint64) (bool, error) {
	if r.sealed {
		return false, fmt.Errorf("range %d of tenant %d: %w", r.id, r.tenant, ErrSealed)
	}
	g := r.writer.Group()
	if st := r.staged; st != nil {
		g.Sync() // a publication holding it is over
		if err := r.Commit(st); err != nil {
			return false, err
		}
	}
	st, err := r.Prepare(limit)
	if err != nil || st == nil {
		return false, err
	}
	if _, err := g.Publish(ctx, []*pool.Staged{st}); err != nil {
		r.staged = nil
		return false, err
	}
	if err := r.Commit(st); err != nil {
		return false, err
	}
	if !st.Done() {
		return false, fmt.Errorf("range %d of tenant %d: group %s did not publish it (not attached there yet)", r.id, r.tenant, g.ID())
	}
	return true, nil
}

func poolOp(op sortbuf.Op) formatv1.Op {
	if op == sortbuf.OpDelete {
		return formatv1.Op_OP_DELETE
	}
	return formatv1.Op_OP_PUT
}

// Close releases the range's buffer (its rows stay in Pebble until Drop)
// and its share of the matcher budget, and detaches it from its group
// (its next owner takes it over); a group of its own is closed.
func (r *Range) Close() {
	r.batch.Close()
	r.match.Close()
	r.writer.Close()
	if r.deps.Group == nil {
		r.writer.Group().Close()
	}
}

// CheckTaken reports (an error matching pool.ErrFenced) whether a newer
// owner has taken the range since this instance last wrote its log (see
// pool.RangeWriter.CheckTaken). A snapshot's positions may be acknowledged
// (Durable) only once a check after writing it found nothing: a newer owner
// that took the range before the snapshot was written restores an older
// one, and the dispatchers would never resend it what lies between.
func (r *Range) CheckTaken(ctx context.Context) error { return r.writer.CheckTaken(ctx) }

// Drop deletes the range's local state (the range moved away or is being
// restored elsewhere) and returns its share of the matcher budget.
func (r *Range) Drop() error {
	r.Close()
	return r.buf.Drop()
}
