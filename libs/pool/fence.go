package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// FenceRange writes a FENCE publication for rangeID into group at the
// first free seq at or after both from (the first seq of the range's
// segment there) and the group's head + 1, stepping over seqs others take
// meanwhile, and returns its seq. From that seq on, the group's writer can
// never publish the range: its next put there fails, it reads the FENCE and
// drops the range.
func FenceRange(ctx context.Context, store objstore.Store, tenant uint64, group string, rangeID, epoch, from uint64, owner string) (uint64, error) {
	src := &groupSource{store: store, tenant: tenant, group: group, indexOnly: true}
	head, floor, err := src.head(ctx, from)
	if err != nil {
		return 0, err
	}
	seq := max(head+1, from, floor, 1)
	msg := &formatv1.GroupPublication{TenantId: tenant, Group: group, Kind: formatv1.GroupPublication_KIND_FENCE, Owner: owner,
		Fences: []*formatv1.GroupFence{{RangeId: rangeID, OwnerEpoch: epoch}}}
	for range maxConflicts {
		msg.Seq, msg.CreatedUnixMs = seq, nowMs()
		b, err := EncodePub(msg, nil)
		if err != nil {
			return 0, err
		}
		err = store.PutIfAbsent(ctx, layout.GroupPubKey(tenant, group, seq), b)
		if err == nil {
			return seq, nil
		}
		if !errors.Is(err, objstore.ErrExists) {
			return 0, fmt.Errorf("write FENCE at seq %d of group %s: %w", seq, group, err)
		}
		seq++
	}
	return 0, fmt.Errorf("group %s: %d seqs in a row taken while fencing range %d", group, maxConflicts, rangeID)
}

// endsSegment tells what publication p means for the segment of rangeID
// opened at epoch: it ends it (a FENCE of it by an owner at least as new,
// or a PUBLISH that does not list it), or it is neutral (a FENCE of other
// ranges, or of this one by an older owner that lost), or it continues it.
func endsSegment(p *Pub, rangeID, epoch uint64) (ended, neutral bool) {
	if p.IsFence() {
		if e, ok := p.FencedBy(rangeID); ok && e >= epoch {
			return true, false
		}
		return false, true
	}
	return !p.Member(rangeID), false
}

// segmentEnd finds where the range's segment in group (first seq first,
// opened at epoch with watermark startWm) ended, given that the FENCE at
// fence ends it at the latest: the last seq of the segment and the range's
// watermark there (its last publication that listed it; startWm if none
// did). Membership is present-then-absent within a segment, so a binary
// search over seqs finds the end; the usual case (the range was published
// up to the FENCE) costs one read.
func segmentEnd(ctx context.Context, store objstore.Store, tenant uint64, group string, rangeID, first, fence, startWm, epoch uint64) (last, wm uint64, err error) {
	src := &groupSource{store: store, tenant: tenant, group: group, indexOnly: true}
	floor, err := src.floor(ctx)
	if err != nil {
		return 0, 0, err
	}
	memo := map[uint64]*Pub{}
	pubAt := func(seq uint64) (*Pub, error) {
		if p, ok := memo[seq]; ok {
			return p, nil
		}
		p, err := src.pubAt(ctx, seq)
		if err != nil {
			if errors.Is(err, objstore.ErrNotFound) && seq < floor {
				err = fmt.Errorf("publication %d of group %s is below the retention floor %d: %w", seq, group, floor, ErrCompacted)
			}
			return nil, err
		}
		memo[seq] = p
		return p, nil
	}
	// ended(seq): the segment has ended at or before seq.
	var ended func(seq uint64) (bool, error)
	ended = func(seq uint64) (bool, error) {
		if seq < first {
			return false, nil
		}
		p, err := pubAt(seq)
		if err != nil {
			return false, err
		}
		e, neutral := endsSegment(p, rangeID, epoch)
		if neutral {
			return ended(seq - 1)
		}
		return e, nil
	}
	lo, hi := first-1, fence // ended(lo) is false, ended(hi) true
	if fence > first {
		e, err := ended(fence - 1)
		if err != nil {
			return 0, 0, err
		}
		if e {
			hi = fence - 1
		} else {
			lo = fence - 1
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		e, err := ended(mid)
		if err != nil {
			return 0, 0, err
		}
		if e {
			hi = mid
		} else {
			lo = mid
		}
	}
	for seq := lo; seq >= first; seq-- {
		p, err := pubAt(seq)
		if err != nil {
			return 0, 0, err
		}
		if st, ok := p.State(rangeID); ok && !p.IsFence() {
			return lo, st.Watermark, nil
		}
	}
	return lo, startWm, nil
}

func nowMs() int64 { return time.Now().UnixMilli() }
