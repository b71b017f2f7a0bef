package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// Group retention follows the range log's (compact.go): publications and
// segments expire by the wall clock of their writer (created_unix_ms; a
// segment expires with its newest publication), in seq order, never the
// group's newest. One call: picks the expired front (bounded), PUTs the
// floor marker floor/{F} ("everything below seq F is garbage"), deletes the
// publications below F and the segments whose last seq is below F, then
// the older floor markers. Readers take nothing below the floor: one
// positioned below it gets ErrCompacted, one opening lists between two
// readings of the floor and starts over if it moved. A crash leaves only
// garbage below the floor, which the next call deletes.

// GroupCompactStats say what one CompactGroup or DeleteGroup call did.
type GroupCompactStats struct {
	Pubs     int   // publications deleted
	Segments int   // segments deleted
	Bytes    int64 // bytes of the objects deleted
	// Floor is the group's floor after the call (0: nothing expired yet).
	Floor uint64
	// More: the call stopped at its bound; calling again deletes more.
	More bool
}

// maxExpiryReads bounds the objects one CompactGroup call reads to tell
// whether they expired.
const maxExpiryReads = 256

// CompactGroup deletes the expired front of a group: what was published
// before cutoff (now minus the retention window), in seq order, but never
// its newest publication. The group's writer calls it (it is still safe
// from anyone). The work per call is bounded by opts.MaxDeletes.
func CompactGroup(ctx context.Context, store objstore.Store, tenant uint64, group string, cutoff time.Time, opts ...CompactOptions) (GroupCompactStats, error) {
	ms := cutoff.UnixMilli()
	return compactGroup(ctx, store, tenant, group, func(p *Pub) bool { return p.CreatedUnixMs > 0 && p.CreatedUnixMs < ms }, opts)
}

// CompactGroupBefore is CompactGroup by commit ts, for tools and tests:
// what a publication publishes expires when every member's watermark in it
// is at or below before (FENCE publications publish nothing). The services'
// retention counts from publication instead (CompactGroup).
func CompactGroupBefore(ctx context.Context, store objstore.Store, tenant uint64, group string, before uint64, opts ...CompactOptions) (GroupCompactStats, error) {
	return compactGroup(ctx, store, tenant, group, func(p *Pub) bool {
		if p.IsFence() {
			return true
		}
		for _, wm := range p.Watermarks() {
			if wm > before {
				return false
			}
		}
		return true
	}, opts)
}

// compactGroup compacts the front of a group whose newest publications
// (each unit's: a segment's last, or a publication) expired says expired.
func compactGroup(ctx context.Context, store objstore.Store, tenant uint64, group string, expired func(*Pub) bool, opts []CompactOptions) (GroupCompactStats, error) {
	var st GroupCompactStats
	budget := DefaultCompactMaxDeletes
	if len(opts) > 0 && opts[0].MaxDeletes > 0 {
		budget = opts[0].MaxDeletes
	}
	src := &groupSource{store: store, tenant: tenant, group: group, indexOnly: true}
	floor, err := src.floor(ctx)
	if err != nil {
		return st, err
	}
	st.Floor = floor
	segs, pubs, err := listGroup(ctx, src, max(floor, 1))
	if err != nil {
		return st, err
	}
	head := uint64(0)
	if len(pubs) > 0 {
		head = pubs[len(pubs)-1].seq
	}
	if len(segs) > 0 {
		head = max(head, segs[len(segs)-1].last)
	}
	// Walk the units (segments, and publications no segment covers) in seq
	// order while they expired.
	cut, reads, n := floor, 0, 0
	si, pi := 0, 0
	for reads < maxExpiryReads && n < budget {
		var first, last uint64
		var newest *Pub
		switch {
		case si < len(segs) && (pi >= len(pubs) || segs[si].first <= pubs[pi].seq):
			s := segs[si]
			first, last = s.first, s.last
			if last >= head {
				break
			}
			x, err := src.readSegment(ctx, s.key)
			if err != nil {
				return st, fmt.Errorf("compact group %s of tenant %d: %w", group, tenant, err)
			}
			newest = x.seg.Pubs[len(x.seg.Pubs)-1]
			for pi < len(pubs) && pubs[pi].seq <= last {
				pi++ // covered by the segment
			}
			si++
		case pi < len(pubs):
			p := pubs[pi]
			first, last = p.seq, p.seq
			if last >= head {
				break
			}
			x, err := src.readPub(ctx, p.seq, false)
			if errors.Is(err, objstore.ErrNotFound) {
				pi++ // deleted after segmenting meanwhile
				continue
			}
			if err != nil {
				return st, fmt.Errorf("compact group %s of tenant %d: %w", group, tenant, err)
			}
			newest = x.pub
			pi++
		}
		if last == 0 || last >= head || newest == nil || !expired(newest) {
			break
		}
		cut = last + 1
		reads++
		n += int(last - first + 1)
	}
	if reads >= maxExpiryReads || n >= budget {
		st.More = true
	}
	if cut <= floor {
		return st, nil
	}
	if err := store.Put(ctx, layout.GroupFloorKey(tenant, group, cut), []byte(layout.Pad(cut))); err != nil {
		return st, fmt.Errorf("compact group %s of tenant %d: write floor %d: %w", group, tenant, cut, err)
	}
	st.Floor = cut
	if err := deleteGroupBelow(ctx, store, src, cut, &st); err != nil {
		return st, err
	}
	return st, deleteOldFloors(ctx, store, tenant, group, false)
}

type segEntry struct {
	key         string
	first, last uint64
	size        int64
}

type pubEntry struct {
	key  string
	seq  uint64
	size int64
}

// listGroup lists a group's segments (last >= from) and publications
// (seq >= from), in seq order.
func listGroup(ctx context.Context, src *groupSource, from uint64) ([]segEntry, []pubEntry, error) {
	var segs []segEntry
	all, err := objstore.ListAll(ctx, src.store, layout.GroupSegPrefix(src.tenant, src.group), layout.GroupSegStartAfter(src.tenant, src.group, from))
	if err != nil {
		return nil, nil, err
	}
	for _, o := range all {
		last, first, err := layout.ParseGroupSegKey(o.Key)
		if err != nil {
			continue
		}
		segs = append(segs, segEntry{key: o.Key, first: first, last: last, size: o.Size})
	}
	// Keys sort by last; segments are disjoint, so by first as well.
	var pubs []pubEntry
	after := ""
	if from > 1 {
		after = layout.GroupPubKey(src.tenant, src.group, from-1)
	}
	all, err = objstore.ListAll(ctx, src.store, layout.GroupPubPrefix(src.tenant, src.group), after)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range all {
		seq, err := layout.ParseGroupSeqKey(o.Key)
		if err != nil {
			continue
		}
		pubs = append(pubs, pubEntry{key: o.Key, seq: seq, size: o.Size})
	}
	return segs, pubs, nil
}

// deleteGroupBelow deletes the publications below cut and the segments
// whose last seq is below it.
func deleteGroupBelow(ctx context.Context, store objstore.Store, src *groupSource, cut uint64, st *GroupCompactStats) error {
	segs, pubs, err := listGroup(ctx, src, 1)
	if err != nil {
		return err
	}
	var doomed []objstore.ObjectInfo
	for _, p := range pubs {
		if p.seq < cut {
			doomed = append(doomed, objstore.ObjectInfo{Key: p.key})
			st.Pubs++
			st.Bytes += p.size
		}
	}
	for _, s := range segs {
		if s.last < cut {
			doomed = append(doomed, objstore.ObjectInfo{Key: s.key})
			st.Segments++
			st.Bytes += s.size
		}
	}
	if err := deleteAll(ctx, store, doomed); err != nil {
		return fmt.Errorf("compact group %s of tenant %d: %w", src.group, src.tenant, err)
	}
	return nil
}

// deleteOldFloors deletes the floor markers but the newest (all of them
// when all is set).
func deleteOldFloors(ctx context.Context, store objstore.Store, tenant uint64, group string, all bool) error {
	markers, err := objstore.ListAll(ctx, store, layout.GroupFloorPrefix(tenant, group), "")
	if err != nil {
		return fmt.Errorf("list floor markers of group %s: %w", group, err)
	}
	if !all && len(markers) > 0 {
		markers = markers[:len(markers)-1]
	}
	return deleteAll(ctx, store, markers)
}

// GroupInfo describes a group as retention sees it.
type GroupInfo struct {
	ID string
	// Head is its highest publication seq (0: it holds none), Newest when
	// that was published (zero when unknown).
	Head   uint64
	Newest time.Time
	Owner  string
}

// ListGroups returns the ids of a tenant's groups, jumping from one group
// to the next with a listing of one key each.
func ListGroups(ctx context.Context, store objstore.Store, tenant uint64) ([]string, error) {
	prefix := layout.GroupsPrefix(tenant)
	var ids []string
	after := ""
	for {
		page, _, err := store.List(ctx, prefix, after, 1)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if len(page) == 0 {
			return ids, nil
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(page[0].Key, prefix), "/")
		if !ok || !layout.ValidGroupID(id) {
			return nil, fmt.Errorf("unexpected object %s under %s", page[0].Key, prefix)
		}
		ids = append(ids, id)
		after = prefix + id + "/\xff"
	}
}

// StatGroup reads a group's head: its newest publication or segment.
func StatGroup(ctx context.Context, store objstore.Store, tenant uint64, group string) (GroupInfo, error) {
	info := GroupInfo{ID: group}
	src := &groupSource{store: store, tenant: tenant, group: group, indexOnly: true}
	head, _, err := src.head(ctx, 1)
	if err != nil || head == 0 {
		return info, err
	}
	info.Head = head
	p, err := src.pubAt(ctx, head)
	if errors.Is(err, objstore.ErrNotFound) {
		return info, nil
	}
	if err != nil {
		return info, err
	}
	info.Owner = p.Owner
	if p.CreatedUnixMs > 0 {
		info.Newest = time.UnixMilli(p.CreatedUnixMs)
	}
	return info, nil
}

// DeleteGroup deletes every object of a group whose writer is gone and
// whose publications have all expired, once no range's open segment names
// it (the caller checks that: the meta-server's retention). It moves the
// floor past the head first, so a reader still positioned in the group gets
// ErrCompacted rather than a gap, then deletes the segments and
// publications, and the floor markers last. It is idempotent.
func DeleteGroup(ctx context.Context, store objstore.Store, tenant uint64, group string) (GroupCompactStats, error) {
	var st GroupCompactStats
	src := &groupSource{store: store, tenant: tenant, group: group}
	head, _, err := src.head(ctx, 1)
	if err != nil {
		return st, err
	}
	if head > 0 {
		st.Floor = head + 1
		if err := store.Put(ctx, layout.GroupFloorKey(tenant, group, st.Floor), []byte(layout.Pad(st.Floor))); err != nil {
			return st, fmt.Errorf("delete group %s of tenant %d: write floor: %w", group, tenant, err)
		}
		if err := deleteGroupBelow(ctx, store, src, st.Floor, &st); err != nil {
			return st, err
		}
	}
	return st, deleteOldFloors(ctx, store, tenant, group, true)
}
