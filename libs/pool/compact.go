package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Retention: CompactPublished deletes the front of a range's log once it was
// published longer ago than the retention window, by the wall clock of the
// owners that wrote it (each entry's created_unix_ms), not by the rows'
// commit ts: a tenant whose TSOs are old (an upstream clock behind, a
// replay of old history) keeps its data as long as any other
// (docs/formats/committed-data-pool.md, "Retention"). Compact does the same
// by commit ts (entry watermark), for tools and tests.
//
// The range's retention floor is a set of marker objects
// range-{r}/floor/{seq:020}; the highest one, F, says "every log entry below
// F except the OPEN entry is garbage, and so is every data file whose name
// carries a seq below F". Readers (findHead) take the first entry at or
// above F as the first retained one, and ignore everything below it.
//
// The order of one compaction is what makes it safe for concurrent readers:
//
//  1. read the log from its first retained entry and pick the entries to
//     drop (expired, and every entry before them too; never the head);
//  2. PUT the new floor marker F — from here on, no new reader uses them;
//  3. delete the log entries below F (keeping seq 1), then the data files
//     whose seq is below F;
//  4. delete the older floor markers.
//
// A reader opening the range reads the floor, lists the data files, and
// reads the floor again: if it moved, it starts over (the second look then
// answers ErrCompacted if its start ts is gone). Since every deletion of a
// data file follows the PUT of a floor above its seq, a listing that missed
// a file the reader needs is always followed by a floor that moved, so a
// reader never silently starts past a missing file. A reader already
// positioned that meets a deleted data file, or whose next entry lies below
// the floor, fails with ErrCompacted: it gets the rows or an error, never a
// gap.
//
// Restores are unaffected: the head (the newest entry) and the OPEN entry
// (the bounds OpenRange needs) are never deleted, and a restore needs
// nothing else from the log — the state comes from the latest sorter
// snapshot, which no log entry references and Compact never touches.
//
// The floor also fences a stale owner that re-creates a deleted seq with
// put-if-absent: its entry is below the floor, so no reader sees it, and the
// next compaction deletes it (along with its orphan data file).
//
// A crash anywhere leaves garbage below the floor only; the next call lists
// and deletes it, so Compact is idempotent and converges.

// DefaultCompactMaxDeletes bounds the objects one Compact call deletes.
const DefaultCompactMaxDeletes = 2000

// compactParallel is how many deletes run at once.
const compactParallel = 8

// CompactOptions tune one Compact call.
type CompactOptions struct {
	// MaxDeletes bounds the log entries plus data files one call deletes
	// (0 = DefaultCompactMaxDeletes); a call that stops there reports More.
	MaxDeletes int
}

// CompactStats say what one Compact call did.
type CompactStats struct {
	Entries int   // log entries deleted
	Files   int   // data files deleted
	Bytes   int64 // bytes of the objects deleted
	// Floor is the first retained log seq after the call (1: nothing
	// expired yet).
	Floor uint64
	// More: the call stopped at MaxDeletes; calling again deletes more.
	More bool
}

func floorPrefix(tenant, rangeID uint64) string {
	return layout.RangePrefix(tenant, rangeID) + "floor/"
}

func floorKey(tenant, rangeID, seq uint64) string {
	return floorPrefix(tenant, rangeID) + layout.Pad(seq)
}

// readFloor returns the range's retention floor: its highest floor marker,
// 0 when nothing was ever compacted.
func readFloor(ctx context.Context, store objstore.Store, tenant, rangeID uint64) (uint64, error) {
	prefix := floorPrefix(tenant, rangeID)
	all, err := objstore.ListAll(ctx, store, prefix, "")
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(all) == 0 {
		return 0, nil
	}
	return seqOf(all[len(all)-1].Key)
}

// Compact deletes the front of a range's log by commit ts: the entries whose
// rows are all at or below before (entry watermark <= before), in log order,
// with the data files they publish — but never the head entry nor the OPEN
// entry. Readers from a ts at or below the last watermark dropped then get
// ErrCompacted. The services' retention uses CompactPublished instead:
// commit ts says when a row was committed upstream, not when TiStream got
// it. Otherwise as CompactPublished.
func Compact(ctx context.Context, store objstore.Store, tenant, rangeID, before uint64, opts ...CompactOptions) (CompactStats, error) {
	return compact(ctx, store, tenant, rangeID, func(e *formatv1.RangeLogEntry) (bool, bool) {
		return true, e.Watermark <= before
	}, opts)
}

// CompactPublished deletes the front of a range's log that was published
// before cutoff (now minus the retention window), in log order, with the
// data files it publishes — but never the head entry nor the OPEN entry.
// An entry is published when its created_unix_ms (the writer's wall clock)
// is before cutoff; an entry without one counts as published when the next
// entry that has one was (an entry is only written after its predecessor
// exists, so log order is publication order). The walk stops at the first
// entry published at or after cutoff, so an owner whose clock ran ahead
// delays retention instead of hastening it. The rows' commit ts play no
// part: rows are kept at least the window after TiStream published them,
// however old their TSOs, and a range keeps everything it published since
// its tenant was registered (or it was split or merged off) for the
// window. Readers from a ts at or below the last watermark dropped get
// ErrCompacted.
//
// Only the range's owner should call it (it is still safe if a stale owner
// does too). It also deletes garbage a crashed earlier call, or a fenced
// owner, left below the floor. The work per call is bounded by
// opts.MaxDeletes. A range without a log returns an error matching
// ErrNoRange.
func CompactPublished(ctx context.Context, store objstore.Store, tenant, rangeID uint64, cutoff time.Time, opts ...CompactOptions) (CompactStats, error) {
	ms := cutoff.UnixMilli()
	return compact(ctx, store, tenant, rangeID, func(e *formatv1.RangeLogEntry) (bool, bool) {
		if e.CreatedUnixMs <= 0 {
			return false, false
		}
		return true, e.CreatedUnixMs < ms
	}, opts)
}

// PublishedAt is when a range log entry was published (its writer's wall
// clock); ok is false for an entry that does not say.
func PublishedAt(e *formatv1.RangeLogEntry) (t time.Time, ok bool) {
	if e.CreatedUnixMs <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(e.CreatedUnixMs), true
}

// expiry says whether an entry has expired: known is false when the entry
// cannot tell by itself (it then expires with the next entry that can).
type expiry func(e *formatv1.RangeLogEntry) (known, expired bool)

func compact(ctx context.Context, store objstore.Store, tenant, rangeID uint64, expired expiry, opts []CompactOptions) (CompactStats, error) {
	var o CompactOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	budget := o.MaxDeletes
	if budget <= 0 {
		budget = DefaultCompactMaxDeletes
	}
	var st CompactStats
	head, first, floor, err := findHead(ctx, store, tenant, rangeID)
	if err != nil {
		return st, err
	}
	// 1. Pick the entries to drop, from the first retained one (the OPEN
	// entry stays: OpenRange and readers need its bounds). Entries that
	// cannot tell whether they expired wait in pending for the next one
	// that can.
	type candidate struct {
		seq       uint64
		objects   int // the entry, and its data file if any
		watermark uint64
	}
	var pending []candidate
	start := max(first, 2)
	next, drop, n := start, start, 0 // entries [start, drop) are dropped
	// below: every entry below the floor has a watermark <= below — the
	// watermark of the last entry dropped, or of the one before start.
	var below uint64
	if start >= head.Seq {
		below = head.PrevWatermark
	}
	take := func() {
		for _, c := range pending {
			if n >= budget {
				break
			}
			n += c.objects
			drop, below = c.seq+1, c.watermark
		}
		pending = pending[:0]
	}
	for next < head.Seq && n < budget {
		e, err := GetEntry(ctx, store, tenant, rangeID, next)
		if err != nil {
			return st, fmt.Errorf("compact range %d of tenant %d: read entry %d: %w", rangeID, tenant, next, err)
		}
		if e.Group != "" {
			// Version 2 entries name the segments that publish the range;
			// they are few and never expire here (their groups' retention
			// deletes the publications): only the version 1 front goes.
			break
		}
		if next == start {
			below = e.PrevWatermark
		}
		known, gone := expired(e)
		if known && !gone {
			break
		}
		c := candidate{seq: next, objects: 1, watermark: e.Watermark}
		if e.File != nil {
			c.objects++
		}
		pending = append(pending, c)
		if known {
			take()
		}
		next++
	}
	if len(pending) > 0 && next == head.Seq && head.Group == "" {
		if known, gone := expired(head); known && gone {
			take() // published before the head, which expired
		}
	}
	cut := floor
	if first > 1 {
		cut = max(cut, first)
	}
	if drop > start {
		// 2. Move the floor first: no reader starting from now on uses what
		// follows.
		cut = drop
		if err := store.Put(ctx, floorKey(tenant, rangeID, cut), []byte(layout.Pad(cut))); err != nil {
			return st, fmt.Errorf("compact range %d of tenant %d: write floor %d: %w", rangeID, tenant, cut, err)
		}
	}
	st.Floor = max(cut, 1)
	if cut <= 2 {
		return st, nil
	}
	// 3. Delete what lies below the floor: log entries (but seq 1), then
	// data files.
	if n >= budget {
		st.More = true // the walk stopped at the budget
	}
	left := max(budget, n)
	logPrefix := layout.RangeLogPrefix(tenant, rangeID)
	var doomed []objstore.ObjectInfo
	for after, done := layout.RangeLogKey(tenant, rangeID, 1), false; !done; {
		if len(doomed) >= left {
			st.More = true
			break
		}
		page, more, err := store.List(ctx, logPrefix, after, min(left-len(doomed), objstore.DefaultListLimit))
		if err != nil {
			return st, fmt.Errorf("list %s: %w", logPrefix, err)
		}
		done = !more || len(page) == 0
		for _, obj := range page {
			seq, err := seqOf(obj.Key)
			if err != nil {
				return st, err
			}
			if seq >= cut {
				done = true
				break
			}
			doomed = append(doomed, obj)
			after = obj.Key
		}
	}
	if err := deleteAll(ctx, store, doomed); err != nil {
		return st, fmt.Errorf("compact range %d of tenant %d: %w", rangeID, tenant, err)
	}
	st.Entries = len(doomed)
	for _, obj := range doomed {
		st.Bytes += obj.Size
	}
	left -= len(doomed)
	// Data files list in watermark order: those the log published below the
	// floor have a watermark <= below; orphans of fenced owners may have a
	// greater one, and a later call (with a later floor) reaches them.
	dataPrefix := layout.DataPrefix(tenant, rangeID)
	doomed = doomed[:0]
	for after, done := "", false; !done; {
		if len(doomed) >= left {
			st.More = true
			break
		}
		page, more, err := store.List(ctx, dataPrefix, after, 0)
		if err != nil {
			return st, fmt.Errorf("list %s: %w", dataPrefix, err)
		}
		done = !more || len(page) == 0
		for _, obj := range page {
			after = obj.Key
			wm, seq, err := layout.ParseDataFileKey(obj.Key)
			if err != nil {
				continue // not a data file: leave it alone
			}
			if wm > below {
				done = true
				break
			}
			if seq < cut {
				doomed = append(doomed, obj)
				if len(doomed) >= left {
					st.More, done = true, true
					break
				}
			}
		}
	}
	if err := deleteAll(ctx, store, doomed); err != nil {
		return st, fmt.Errorf("compact range %d of tenant %d: %w", rangeID, tenant, err)
	}
	st.Files = len(doomed)
	for _, obj := range doomed {
		st.Bytes += obj.Size
	}
	// 4. Older floor markers say less than the newest: drop them.
	markers, err := objstore.ListAll(ctx, store, floorPrefix(tenant, rangeID), "")
	if err != nil {
		return st, fmt.Errorf("list floor markers of range %d: %w", rangeID, err)
	}
	if len(markers) > 1 {
		if err := deleteAll(ctx, store, markers[:len(markers)-1]); err != nil {
			return st, fmt.Errorf("compact range %d of tenant %d: %w", rangeID, tenant, err)
		}
	}
	return st, nil
}

// deleteAll deletes objs, a few at a time.
func deleteAll(ctx context.Context, store objstore.Store, objs []objstore.ObjectInfo) error {
	if len(objs) == 0 {
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	keys := make(chan string)
	for range min(compactParallel, len(objs)) {
		wg.Go(func() {
			for k := range keys {
				if err := store.Delete(ctx, k); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, obj := range objs {
		keys <- obj.Key
	}
	close(keys)
	wg.Wait()
	return errors.Join(errs...)
}

// DeleteRange deletes every pool object of a range whose data has expired as
// a whole: a retired range no manifest lists any more (the meta-server
// publishes that manifest first, so new readers never open it). It moves the
// floor past the head first, so a reader that still opens the range from an
// older manifest gets ErrCompacted rather than part of a log, then deletes
// the data files, the log entries, the head hint and finally the floor
// markers. It is idempotent; a range without objects is a no-op.
func DeleteRange(ctx context.Context, store objstore.Store, tenant, rangeID uint64) (CompactStats, error) {
	var st CompactStats
	head, _, err := FindHead(ctx, store, tenant, rangeID)
	switch {
	case errors.Is(err, ErrNoRange), errors.Is(err, ErrCompacted):
		// Nothing left, or an earlier call moved the floor already.
	case err != nil:
		return st, err
	default:
		st.Floor = head.Seq + 1
		if err := store.Put(ctx, floorKey(tenant, rangeID, st.Floor), []byte(layout.Pad(st.Floor))); err != nil {
			return st, fmt.Errorf("delete range %d of tenant %d: write floor: %w", rangeID, tenant, err)
		}
	}
	for _, part := range []struct {
		prefix string
		n      *int
	}{{layout.DataPrefix(tenant, rangeID), &st.Files}, {layout.RangeLogPrefix(tenant, rangeID), &st.Entries}} {
		all, err := objstore.ListAll(ctx, store, part.prefix, "")
		if err != nil {
			return st, fmt.Errorf("list %s: %w", part.prefix, err)
		}
		if err := deleteAll(ctx, store, all); err != nil {
			return st, fmt.Errorf("delete range %d of tenant %d: %w", rangeID, tenant, err)
		}
		*part.n = len(all)
		for _, o := range all {
			st.Bytes += o.Size
		}
	}
	if err := store.Delete(ctx, headHintKey(tenant, rangeID)); err != nil {
		return st, fmt.Errorf("delete range %d of tenant %d: %w", rangeID, tenant, err)
	}
	markers, err := objstore.ListAll(ctx, store, floorPrefix(tenant, rangeID), "")
	if err != nil {
		return st, fmt.Errorf("list floor markers of range %d: %w", rangeID, err)
	}
	if err := deleteAll(ctx, store, markers); err != nil {
		return st, fmt.Errorf("delete range %d of tenant %d: %w", rangeID, tenant, err)
	}
	return st, nil
}
