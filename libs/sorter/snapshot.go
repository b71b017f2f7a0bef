package sorter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/watermark"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// chunkSize bounds one snapshot record carrying part of an encoded state,
// well under the container's block limit.
const chunkSize = 1 << 20

// Snapshot persists everything the range needs to resume: the watermark
// map, the matcher (with its spilled prewrites), the rows not yet flushed and
// the store positions they include. It must be called between Applies. It
// returns the object key written.
func (r *Range) Snapshot(ctx context.Context) (string, error) {
	key, _, err := r.snapshot(ctx, true)
	return key, err
}

// SnapshotIfChanged writes a snapshot like Snapshot, unless the range's
// content — the rows above the published watermark, the matcher and the
// spilled prewrites — is the same as in the last snapshot this instance
// wrote or restored: then it writes nothing and reports false. The
// watermark map and the store positions are left out of the comparison:
// they move with every batch, idle or not, and an older snapshot's are
// caught up by feeding the range again from its positions.
//
// Skipping is always safe for what the pool publishes, because a range
// restored from any of its snapshots and fed every store file after that
// snapshot's positions publishes the same rows (replays of what it had
// published are dropped). What skipping costs is elsewhere and the caller
// bounds it: a snapshot not written is not acknowledged (Durable), so the
// dispatchers keep the store files after the last written one's positions
// and their checkpoints wait (services/sorter writes one after
// --snapshot-max-skip-files files, or when nothing arrived for a snapshot
// interval).
func (r *Range) SnapshotIfChanged(ctx context.Context) (string, bool, error) {
	return r.snapshot(ctx, false)
}

// snapshot writes a snapshot (always, or when the content changed) and
// reports whether it did.
func (r *Range) snapshot(ctx context.Context, always bool) (string, bool, error) {
	if r.sealed {
		return "", false, fmt.Errorf("range %d of tenant %d: %w", r.id, r.tenant, ErrSealed)
	}
	var mb bytes.Buffer
	if err := r.match.Snapshot(&mb); err != nil {
		return "", false, fmt.Errorf("range %d: encode matcher: %w", r.id, err)
	}
	digest, err := r.contentDigest(mb.Bytes())
	if err != nil {
		return "", false, fmt.Errorf("range %d: %w", r.id, err)
	}
	if !always && r.snapDigest.known && r.snapDigest.sum == digest {
		r.stats.SnapshotsSkipped++
		return "", false, nil
	}
	num := r.snapNum + 1
	h := &formatv1.SorterSnapshotHeader{
		TenantId: r.tenant, RangeId: r.id, OwnerEpoch: r.writer.Epoch(), Number: num,
		PublishedWatermark: r.published, LogSeq: r.writer.Seq(), CreatedUnixMs: time.Now().UnixMilli(),
		StartKey: r.start, EndKey: r.end, OpenedAt: r.openedAt, Positions: positions(r.applied),
	}
	wmBytes, err := r.wm.MarshalBinary()
	if err != nil {
		return "", false, fmt.Errorf("range %d: encode watermark map: %w", r.id, err)
	}
	b, err := encodeSnapshot(h, wmBytes, mb.Bytes(), r.unflushed(nil), r.spilled(nil))
	if err != nil {
		return "", false, fmt.Errorf("range %d: %w", r.id, err)
	}
	key := layout.SorterSnapshotKey(r.tenant, r.id, r.writer.Epoch(), num)
	if err := r.deps.Snapshots.Put(ctx, key, b); err != nil {
		return "", false, fmt.Errorf("write snapshot %s: %w", key, err)
	}
	r.snapNum = num
	r.snapDigest = snapshotDigest{sum: digest, known: true}
	r.stats.Snapshots++
	r.stats.SnapshotBytes = int64(len(b))
	r.snapKeys = append(r.snapKeys, key)
	r.pruneSnapshots(ctx)
	return key, true, nil
}

// keepSnapshots is how many of a range's newest snapshots stay. Restore
// reads only the newest; the one before it stays so that a newest one that
// cannot be read (a torn upload on a store without atomic puts, a bug) is
// not also the only one.
const keepSnapshots = 2

// pruneSnapshots deletes the range's snapshots older than the newest
// keepSnapshots, best effort: a deletion that fails is tried again after
// the next snapshot. Without it every snapshot of a live range stays
// forever (one per range per snapshot interval); the meta-server's
// retention deletes a retired range's last ones.
func (r *Range) pruneSnapshots(ctx context.Context) {
	for len(r.snapKeys) > keepSnapshots {
		if err := r.deps.Snapshots.Delete(ctx, r.snapKeys[0]); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			r.stats.SnapshotDeleteErrors++
			slog.Warn("could not delete an old sorter snapshot; retrying after the next one",
				"tenant", r.tenant, "range", r.id, "snapshot", r.snapKeys[0], "err", err)
			return
		}
		r.stats.SnapshotsDeleted++
		r.snapKeys = r.snapKeys[1:]
	}
}

// rememberDigest records the current content as the last snapshot's.
func (r *Range) rememberDigest() error {
	var mb bytes.Buffer
	if err := r.match.Snapshot(&mb); err != nil {
		return fmt.Errorf("range %d: encode matcher: %w", r.id, err)
	}
	d, err := r.contentDigest(mb.Bytes())
	if err != nil {
		return fmt.Errorf("range %d: %w", r.id, err)
	}
	r.snapDigest = snapshotDigest{sum: d, known: true}
	return nil
}

// snapshotDigest fingerprints the content of a range's last snapshot
// (contentDigest); unknown until it wrote or restored one.
type snapshotDigest struct {
	sum   uint64
	known bool
}

// digestSeed seeds the content digests of this process; they are only
// compared in memory.
var digestSeed = maphash.MakeSeed()

// contentDigest hashes what SnapshotIfChanged compares: the encoded matcher,
// the unflushed rows and the spilled prewrites. A collision could only make
// it skip a snapshot, which is safe (see SnapshotIfChanged).
func (r *Range) contentDigest(matcher []byte) (uint64, error) {
	var h maphash.Hash
	h.SetSeed(digestSeed)
	var n [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	blob := func(b []byte) {
		num(uint64(len(b)))
		h.Write(b)
	}
	blob(matcher)
	rows := 0
	err := r.unflushed(nil)(func(s sortbuf.Row) error {
		rows++
		num(s.CommitTs)
		num(s.StartTs)
		num(uint64(s.Op))
		blob(s.Key)
		blob(s.Value)
		blob(s.OldValue)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("digest rows: %w", err)
	}
	num(uint64(rows)) // separates the rows from the spilled prewrites
	err = r.spilled(nil)(func(startTs uint64, key, value []byte) error {
		num(startTs)
		blob(key)
		blob(value)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("digest spilled prewrites: %w", err)
	}
	return h.Sum64(), nil
}

func positions(applied map[uint64]uint64) []*formatv1.StorePosition {
	var out []*formatv1.StorePosition
	for _, s := range slices.Sorted(maps.Keys(applied)) {
		out = append(out, &formatv1.StorePosition{StoreId: s, Seq: applied[s]})
	}
	return out
}

// rowSource yields committed rows; spillSource yields spilled prewrites.
type (
	rowSource   func(yield func(sortbuf.Row) error) error
	spillSource func(yield func(startTs uint64, key, value []byte) error) error
)

// unflushed yields the buffered rows above the published watermark whose
// key keep selects (all when keep is nil).
func (r *Range) unflushed(keep func([]byte) bool) rowSource {
	return func(yield func(sortbuf.Row) error) error {
		return r.buf.Scan(^uint64(0), func(s sortbuf.Row) error {
			if s.CommitTs <= r.published || (keep != nil && !keep(s.Key)) {
				return nil
			}
			return yield(s)
		})
	}
}

// spilled yields the matcher's spilled prewrites whose key keep selects.
func (r *Range) spilled(keep func([]byte) bool) spillSource {
	return func(yield func(uint64, []byte, []byte) error) error {
		return r.buf.Spill().ForEach(func(startTs uint64, key, value []byte) error {
			if keep != nil && !keep(key) {
				return nil
			}
			return yield(startTs, key, value)
		})
	}
}

// encodeSnapshot builds a snapshot file (docs/formats/sorter-snapshot.md).
func encodeSnapshot(h *formatv1.SorterSnapshotHeader, wmBytes, matchBytes []byte, rows rowSource, spilled spillSource) ([]byte, error) {
	w := container.NewWriter(container.KindSorterSnapshot, container.Options{Codec: container.CodecZstd})
	if err := w.AppendMessage(h); err != nil {
		return nil, err
	}
	rec := &formatv1.SnapshotRecord{}
	for c := range slices.Chunk(wmBytes, chunkSize) {
		rec.Record = &formatv1.SnapshotRecord_WatermarkChunk{WatermarkChunk: c}
		if err := w.AppendMessage(rec); err != nil {
			return nil, err
		}
	}
	for c := range slices.Chunk(matchBytes, chunkSize) {
		rec.Record = &formatv1.SnapshotRecord_MatcherChunk{MatcherChunk: c}
		if err := w.AppendMessage(rec); err != nil {
			return nil, err
		}
	}
	err := rows(func(s sortbuf.Row) error {
		rec.Record = &formatv1.SnapshotRecord_Row{Row: &formatv1.CommittedRow{CommitTs: s.CommitTs, StartTs: s.StartTs,
			Op: poolOp(s.Op), Key: s.Key, Value: s.Value, OldValue: s.OldValue}}
		return w.AppendMessage(rec)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot rows: %w", err)
	}
	err = spilled(func(startTs uint64, key, value []byte) error {
		rec.Record = &formatv1.SnapshotRecord_Spilled{Spilled: &formatv1.SpilledPrewrite{StartTs: startTs, Key: key, Value: value}}
		return w.AppendMessage(rec)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot spilled prewrites: %w", err)
	}
	return w.Finish()
}

// Restore takes range id of tenant over with a greater owner epoch: it
// fences the previous owner in the pool (pool.OpenRange), and rebuilds the
// state from the latest snapshot, dropping what the pool already published.
// Feed it again from Applied()+1 of each store. Without a snapshot the range
// restarts empty and must be fed from each store's first file.
func Restore(ctx context.Context, deps Deps, tenant, id, epoch uint64) (*Range, error) {
	w, err := openRange(ctx, deps, tenant, id, epoch)
	if err != nil {
		return nil, err
	}
	snaps, err := objstore.ListAll(ctx, deps.Snapshots, layout.SorterSnapshotPrefix(tenant, id), "")
	if err != nil {
		return nil, fmt.Errorf("list snapshots of range %d: %w", id, err)
	}
	// A stale buffer of a previous owner in this process must not leak in.
	if err := deps.Buffers.Buffer(tenant<<40 | id).Drop(); err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return newRange(deps, w, nil)
	}
	key := snaps[len(snaps)-1].Key // keys sort by epoch, then number
	data, err := deps.Snapshots.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	r, err := restoreFrom(deps, w, key, data)
	if err != nil {
		return nil, err
	}
	for _, o := range snaps {
		r.snapKeys = append(r.snapKeys, o.Key)
	}
	return r, nil
}

func restoreFrom(deps Deps, w *pool.RangeWriter, key string, data []byte) (*Range, error) {
	cr, err := container.Open(key, data, container.KindSorterSnapshot)
	if err != nil {
		return nil, err
	}
	h := &formatv1.SorterSnapshotHeader{}
	if err := cr.NextMessage(h); err != nil {
		if err == io.EOF {
			return nil, cr.Corrupt(nil, "no header")
		}
		return nil, err
	}
	start, end, openedAt := w.Bounds()
	if h.TenantId != w.Tenant() || h.RangeId != w.ID() || !bytes.Equal(h.StartKey, start) || !bytes.Equal(h.EndKey, end) || h.OpenedAt != openedAt {
		return nil, fmt.Errorf("snapshot %s is of tenant %d range %d [%x, %x) opened at %d, not of this range", key, h.TenantId, h.RangeId, h.StartKey, h.EndKey, h.OpenedAt)
	}
	var wmBytes, matchBytes []byte
	var rows []sortbuf.Row
	var spilled []*formatv1.SpilledPrewrite
	published := w.Watermark()
	for {
		rec := &formatv1.SnapshotRecord{}
		err := cr.NextMessage(rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch x := rec.Record.(type) {
		case *formatv1.SnapshotRecord_WatermarkChunk:
			wmBytes = append(wmBytes, x.WatermarkChunk...)
		case *formatv1.SnapshotRecord_MatcherChunk:
			matchBytes = append(matchBytes, x.MatcherChunk...)
		case *formatv1.SnapshotRecord_Row:
			if x.Row.CommitTs > published {
				rows = append(rows, sortbuf.Row{CommitTs: x.Row.CommitTs, StartTs: x.Row.StartTs, Op: sortOp(x.Row.Op),
					Key: x.Row.Key, Value: x.Row.Value, OldValue: x.Row.OldValue})
			}
		case *formatv1.SnapshotRecord_Spilled:
			spilled = append(spilled, x.Spilled)
		default:
			return nil, cr.Corrupt(nil, "snapshot record with nothing set")
		}
	}
	wm, err := watermark.Decode(wmBytes)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: watermark map: %w", key, err)
	}
	if ws, we := wm.Span(); !bytes.Equal(ws, start) || !bytes.Equal(we, end) {
		return nil, fmt.Errorf("snapshot %s: watermark map of [%x, %x), the range is [%x, %x)", key, ws, we, start, end)
	}
	r, err := newRange(deps, w, wm)
	if err != nil {
		return nil, err
	}
	if err := r.buf.DeleteUpTo(published); err != nil {
		return nil, err
	}
	for _, s := range spilled {
		if err := r.buf.Spill().Put(s.StartTs, s.Key, s.Value); err != nil {
			return nil, err
		}
	}
	if err := r.match.Restore(bytes.NewReader(matchBytes)); err != nil {
		return nil, fmt.Errorf("snapshot %s: matcher: %w", key, err)
	}
	n, err := r.dropLatePending(published)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", key, err)
	}
	if n > 0 {
		slog.Info("restored range: dropped commits waiting for their prewrite at or below the published watermark (resolved by the previous owner)",
			"tenant", r.tenant, "range", r.id, "snapshot", key, "published", published, "commits", n)
	}
	// Forget only below what this instance's input has passed, not the
	// published watermark: the files after the snapshot's positions are
	// fed again, with prewrites of transactions the previous owner
	// published, and what the matcher kept to drop them (rollbacks, dropped
	// commits) or to correct a row (the correction index) must meet them.
	// Commit forgets the rest after the range's first flush, which its
	// watermark map allows only once it has read past them.
	r.match.Forget(min(published, wm.Watermark()))
	if err := r.buf.Add(rows...); err != nil {
		return nil, err
	}
	for _, p := range h.Positions {
		r.applied[p.StoreId] = p.Seq
	}
	r.snapNum = 0
	if h.OwnerEpoch == w.Epoch() {
		r.snapNum = h.Number
	}
	// The restored content is what a restore from this snapshot gives
	// again: while it stays so, SnapshotIfChanged need not write.
	if err := r.rememberDigest(); err != nil {
		return nil, err
	}
	return r, nil
}

// dropLatePending drops the restored matcher's commits waiting for their
// prewrite with commit_ts <= published, as applyRow drops such a commit on
// arrival (txnmatch.Matcher.DropCommit: the prewrite goes too, now or when
// the files after the snapshot bring it again). One can only be there if
// the previous owner resolved it after the snapshot (matched it, or dropped
// it as a duplicate) and then published past it: a waiting commit holds
// the flush below its commit_ts (Target), and is only ended by its
// prewrite (the row then goes to the buffer, and so into the flush that
// passes it) or by dropDuplicatePending (the row is in the buffer already).
// So its row, if any, is published, and neither its prewrite nor
// dropDuplicatePending (the buffer has nothing at or below published) would
// ever end it: Target would hold the range below its published watermark
// forever. A waiting commit whose row was not published is above
// published and stays. They count as LateCommits.
func (r *Range) dropLatePending(published uint64) (int, error) {
	type pend struct {
		key               []byte
		startTs, commitTs uint64
	}
	var late []pend
	r.match.PendingCommits(func(key []byte, startTs, commitTs uint64) bool {
		if commitTs <= published {
			late = append(late, pend{bytes.Clone(key), startTs, commitTs})
		}
		return true
	})
	for _, p := range late {
		if err := r.match.DropCommit(p.key, p.startTs, p.commitTs); err != nil {
			return 0, err
		}
	}
	r.stats.LateCommits += int64(len(late))
	return len(late), nil
}

func sortOp(op formatv1.Op) sortbuf.Op {
	if op == formatv1.Op_OP_DELETE {
		return sortbuf.OpDelete
	}
	return sortbuf.OpPut
}
