package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// ErrGroupClosed means the group writer was closed: nothing more is
// published in that group.
var ErrGroupClosed = errors.New("group writer closed")

// GroupOptions tune a GroupWriter. Zero values take the defaults.
type GroupOptions struct {
	// SegmentBytes: buffered sections of this many bytes are written as a
	// segment (default 4 MiB).
	SegmentBytes int
	// SegmentAge: publications buffered this long are written as a segment
	// (default 10 minutes).
	SegmentAge time.Duration
	// SegmentPubs bounds the publications of one segment (default 1024).
	SegmentPubs int
	// Grace: publications covered by a segment are deleted this long after
	// the segment was written (default 2 × SegmentAge; negative: never).
	Grace time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OnSegment, when set, is told about every segment write.
	OnSegment func(SegmentResult)
	// OnFence, when set, is told about every FENCE this writer wrote into
	// another group (taking a range over): the group and the FENCE's seq.
	// A sorter announces it as it announces its own publications, so that
	// readers that believe the old group has nothing above its last
	// announced publication read the FENCE at once.
	OnFence func(group string, seq uint64)
}

// SegmentResult describes one segment write.
type SegmentResult struct {
	First, Last uint64
	Bytes       int
	Err         error
	// PubsDeleted counts the publications deleted afterwards because an
	// older segment covering them was past its grace.
	PubsDeleted int
}

func (o GroupOptions) withDefaults() GroupOptions {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 4 << 20
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = 10 * time.Minute
	}
	if o.SegmentPubs <= 1 {
		o.SegmentPubs = 1024
	}
	if o.Grace == 0 {
		o.Grace = 2 * o.SegmentAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// GroupWriter publishes the ranges one sorter process owns for one tenant:
// every Publish writes one publication (put-if-absent on its seq) with the
// watermarks of every attached range and the rows of those that staged
// some. It keeps the sections of its recent publications and writes them
// as segments (each range's rows contiguous), then deletes the
// publications a segment covers after a grace period.
//
// Fencing happens in the group's log: a new owner of a range writes a FENCE
// publication at the next free seq; this writer's next put there fails, it
// reads the FENCE, drops the range (its staged rows are not published) and
// publishes the others at the next seq.
//
// A GroupWriter is safe for concurrent use.
type GroupWriter struct {
	store  objstore.Store
	tenant uint64
	id     string
	owner  string
	o      GroupOptions

	pubMu sync.Mutex // one Publish at a time; guards the segment buffer

	mu          sync.Mutex
	next        uint64 // seq of the next publication
	inflight    bool   // a publication at next is being written
	members     map[uint64]*attachment
	lastMembers []uint64 // member ids of the last publication written
	closed      bool
	written     []writtenSeg // segments written, for the grace deletion
	newest      uint64       // highest seq known to exist

	buf      []*bufferedPub
	bufBytes int

	bufs bufCache // recycled sections

	segq       chan *segJob
	segDone    chan struct{}
	segPending sync.WaitGroup
	segCtx     context.Context // ends at Close: a segment being written is abandoned
	segCancel  context.CancelFunc

	pubs, pubBytes, conflicts, fenced atomic.Int64
}

// attachment is one range attached to the group from seq first on.
type attachment struct {
	rangeID, epoch uint64
	first          uint64
	// wm is the watermark last published for it (or attached with), and
	// lastSeq the last publication that listed it (first-1 if none). Both
	// under the group's mu.
	wm, lastSeq uint64
	gone        bool // fenced out or detached
	fenced      bool
}

type bufferedPub struct {
	msg      *formatv1.GroupPublication
	sections map[uint64][][]byte // each range's section, in the parts it was built in
	created  time.Time
}

type segJob struct {
	first, last uint64
	key         string
	parts       [][]byte // the index, then the sections, as they were staged
	bytes       int
	// sections go back to the buffer cache once the segment is written
	// (not after a failed put: a transport may still read its body).
	sections []map[uint64][][]byte
}

type writtenSeg struct {
	first, last uint64
	at          time.Time
}

// NewGroupWriter starts writing group id of tenant. The id must be new:
// unique forever for the tenant (a sorter uses its id, its start time and a
// counter), since the writer starts at seq 1.
func NewGroupWriter(store objstore.Store, tenant uint64, id, owner string, o GroupOptions) (*GroupWriter, error) {
	if !layout.ValidGroupID(id) {
		return nil, fmt.Errorf("group id %q: want 1 to 128 characters of [A-Za-z0-9._-]", id)
	}
	if tenant == 0 {
		return nil, errors.New("group writer: tenant 0")
	}
	g := &GroupWriter{store: store, tenant: tenant, id: id, owner: owner, o: o.withDefaults(), next: 1,
		members: map[uint64]*attachment{}, segq: make(chan *segJob, 2), segDone: make(chan struct{})}
	g.segCtx, g.segCancel = context.WithCancel(context.Background())
	go g.segmentLoop()
	return g, nil
}

// GroupID makes a group id from a writer's identity (any characters not
// allowed in a group id become '_') and numbers that make it unique, for
// example the process's start time and a counter.
func GroupID(owner string, parts ...uint64) string {
	b := []byte(owner)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 80 {
		b = b[:80]
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte("g"), b...)
	}
	for _, p := range parts {
		b = fmt.Appendf(b, "-%d", p)
	}
	return string(b)
}

// ID is the group id.
func (g *GroupWriter) ID() string { return g.id }

// Tenant is the group's tenant.
func (g *GroupWriter) Tenant() uint64 { return g.tenant }

// Owner is the writer's identity.
func (g *GroupWriter) Owner() string { return g.owner }

// Members is the number of attached ranges.
func (g *GroupWriter) Members() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// Next is the seq of the next publication.
func (g *GroupWriter) Next() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.next
}

// GroupStats are a group writer's counters.
type GroupStats struct {
	Pubs, PubBytes, Conflicts, Fenced int64
}

// Stats returns the counters.
func (g *GroupWriter) Stats() GroupStats {
	return GroupStats{Pubs: g.pubs.Load(), PubBytes: g.pubBytes.Load(), Conflicts: g.conflicts.Load(), Fenced: g.fenced.Load()}
}

// Close stops the writer: nothing more is published or attached. A
// segment being written is abandoned (its publications stay readable one
// by one).
func (g *GroupWriter) Close() {
	g.pubMu.Lock()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		g.pubMu.Unlock()
		return
	}
	g.closed = true
	for _, a := range g.members {
		a.gone = true
	}
	g.members = map[uint64]*attachment{}
	g.mu.Unlock()
	close(g.segq)
	g.pubMu.Unlock()
	g.segCancel()
	<-g.segDone
}

// attach adds a range from the first publication at or after minSeq that
// is not written yet, and returns its attachment (first: that seq). A range
// attached already is replaced.
func (g *GroupWriter) attach(rangeID, epoch, wm, minSeq uint64) (*attachment, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, fmt.Errorf("group %s of tenant %d: %w", g.id, g.tenant, ErrGroupClosed)
	}
	first := g.next
	if g.inflight {
		first++
	}
	first = max(first, minSeq)
	a := &attachment{rangeID: rangeID, epoch: epoch, first: first, wm: wm, lastSeq: first - 1}
	if old := g.members[rangeID]; old != nil {
		old.gone = true
	}
	g.members[rangeID] = a
	return a, nil
}

// detach removes a range: the next publication does not list it.
func (g *GroupWriter) detach(a *attachment) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members[a.rangeID] == a {
		delete(g.members, a.rangeID)
	}
	a.gone = true
}

// durable returns what is published of an attachment: its watermark, the
// last publication listing it, and whether it was fenced out.
func (g *GroupWriter) durable(a *attachment) (wm, lastSeq uint64, fenced bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return a.wm, a.lastSeq, a.fenced
}

// Sync waits until a Publish in progress has finished.
func (g *GroupWriter) Sync() {
	g.pubMu.Lock()
	defer g.pubMu.Unlock()
}

// PubResult says what one Publish did.
type PubResult struct {
	Seq       uint64 // the publication written; 0 when none was needed
	Bytes     int
	Rows      uint64
	Conflicts int      // seqs found taken by FENCE publications
	Fenced    []uint64 // ranges fenced out of the group meanwhile
}

// maxConflicts bounds the FENCE publications one Publish steps over.
const maxConflicts = 1000

// Publish writes the next publication: every attached range at its
// published watermark, moved to the watermark of its staged flush (with its
// rows) for those in staged. Nothing is written when no watermark moves and
// the membership did not change. Each staged flush ends Done (published),
// Fenced (its range was fenced out: never published) or failed (not
// published: stage it again); on an error, none is published.
func (g *GroupWriter) Publish(ctx context.Context, staged []*Staged) (PubResult, error) {
	g.pubMu.Lock()
	defer g.pubMu.Unlock()
	var res PubResult
	defer func() {
		for _, s := range staged {
			s.state.CompareAndSwap(stagePending, stageFailed)
		}
	}()
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return res, fmt.Errorf("group %s of tenant %d: %w", g.id, g.tenant, ErrGroupClosed)
		}
		seq := g.next
		var mem []*attachment
		later := false
		for _, id := range sortedIDs(g.members) {
			a := g.members[id]
			if a.first <= seq {
				mem = append(mem, a)
			} else {
				later = true
			}
		}
		byRange := map[uint64]*Staged{}
		for _, s := range staged {
			a := s.att
			if s.state.Load() != stagePending || a.gone || a.first > seq {
				continue
			}
			if s.Prev != a.wm {
				s.state.Store(stageFailed) // staged before another flush of it was published
				continue
			}
			byRange[a.rangeID] = s
		}
		ids := make([]uint64, len(mem))
		for i, a := range mem {
			ids[i] = a.rangeID
		}
		if len(byRange) == 0 && !later && slices.Equal(ids, g.lastMembers) {
			g.mu.Unlock()
			return res, nil
		}
		g.inflight = true
		g.mu.Unlock()

		// The object is the index and the sections as they were staged:
		// the store writes them one after another (a file, a request body)
		// instead of a copy joining them (a flush round of a busy sorter
		// can be hundreds of MiB).
		msg, parts, rows := g.build(seq, mem, byRange)
		size := 0
		idx, err := EncodePubIndex(msg, parts[1:]...)
		if err == nil {
			parts[0] = idx
			size = objstore.PartsLen(parts)
			err = objstore.PutIfAbsentParts(ctx, g.store, layout.GroupPubKey(g.tenant, g.id, seq), parts...)
		}
		g.mu.Lock()
		g.inflight = false
		if err == nil {
			for _, a := range mem {
				if s := byRange[a.rangeID]; s != nil {
					a.wm = s.Watermark
					s.seq = seq
					s.state.Store(stageDone)
				}
				a.lastSeq = seq
			}
			g.next, g.newest, g.lastMembers = seq+1, max(g.newest, seq), ids
			g.mu.Unlock()
			g.pubs.Add(1)
			g.pubBytes.Add(int64(size))
			res.Seq, res.Bytes, res.Rows = seq, size, rows
			sections := map[uint64][][]byte{}
			held := 0 // the capacity of the sections' buffers
			for id, s := range byRange {
				if s.data != nil {
					for _, b := range s.data {
						held += cap(b)
					}
					sections[id] = s.data
					if res.Conflicts > 0 {
						// They were the body of a put that failed, which
						// a transport may go on reading after it returned
						// (an HTTP client closes a request body when it
						// likes): never recycle them, copy them.
						sections[id] = [][]byte{slices.Concat(s.data...)}
					}
					s.data = nil // the segment buffer owns it now, then g.bufs
				}
			}
			g.bufs.follow(held)
			g.buffer(msg, sections)
			return res, nil
		}
		g.mu.Unlock()
		if !errors.Is(err, objstore.ErrExists) {
			return res, fmt.Errorf("group %s of tenant %d: publish seq %d: %w", g.id, g.tenant, seq, err)
		}
		// Another writer took seq: only a new owner of some range does, with
		// a FENCE.
		other, err := readPubObject(ctx, g.store, g.tenant, g.id, seq)
		if err != nil {
			return res, fmt.Errorf("group %s of tenant %d: seq %d is taken: %w", g.id, g.tenant, seq, err)
		}
		if !other.IsFence() {
			return res, fmt.Errorf("group %s of tenant %d: seq %d was published by %q: two writers share the group", g.id, g.tenant, seq, other.Owner)
		}
		g.mu.Lock()
		for _, f := range other.Fences {
			if a := g.members[f.RangeId]; a != nil && a.first <= seq && a.epoch <= f.OwnerEpoch {
				a.gone, a.fenced = true, true
				delete(g.members, f.RangeId)
				res.Fenced = append(res.Fenced, f.RangeId)
				g.fenced.Add(1)
			}
		}
		g.next, g.newest = seq+1, max(g.newest, seq)
		g.mu.Unlock()
		for _, s := range staged {
			if s.att.fenced {
				s.state.CompareAndSwap(stagePending, stageFenced)
			}
		}
		res.Conflicts++
		g.conflicts.Add(1)
		g.buffer(other.GroupPublication, nil)
		if res.Conflicts >= maxConflicts {
			return res, fmt.Errorf("group %s of tenant %d: %d seqs in a row taken by FENCE publications", g.id, g.tenant, res.Conflicts)
		}
	}
}

// build assembles publication seq: the members' intervals, the most common
// one as the default, and the staged rows as sections: the parts of the
// object after parts[0], which is left for the index.
func (g *GroupWriter) build(seq uint64, mem []*attachment, byRange map[uint64]*Staged) (*formatv1.GroupPublication, [][]byte, uint64) {
	msg := &formatv1.GroupPublication{TenantId: g.tenant, Group: g.id, Seq: seq, Kind: formatv1.GroupPublication_KIND_PUBLISH,
		Owner: g.owner, CreatedUnixMs: g.o.Now().UnixMilli()}
	type iv struct{ prev, wm uint64 }
	ivs := make([]iv, len(mem))
	count := map[iv]int{}
	ids := make([]uint64, len(mem))
	var best iv
	for i, a := range mem {
		ids[i] = a.rangeID
		v := iv{a.wm, a.wm}
		if s := byRange[a.rangeID]; s != nil {
			v = iv{s.Prev, s.Watermark}
		}
		ivs[i] = v
		if s := byRange[a.rangeID]; s == nil || s.data == nil {
			count[v]++
			if n := count[v]; n > count[best] || (n == count[best] && (v.wm > best.wm || v.wm == best.wm && v.prev > best.prev)) {
				best = v
			}
		}
	}
	msg.MemberRuns = encodeRuns(ids)
	msg.DefaultPrevWatermark, msg.DefaultWatermark = best.prev, best.wm
	parts := [][]byte{nil} // the index goes first
	var off, rows uint64
	for i, a := range mem {
		s := byRange[a.rangeID]
		if ivs[i] == best && (s == nil || s.data == nil) {
			continue
		}
		st := &formatv1.GroupRangeState{RangeId: a.rangeID, PrevWatermark: ivs[i].prev, Watermark: ivs[i].wm}
		if s != nil && s.data != nil {
			st.Section = &formatv1.GroupSection{Offset: off, Length: uint64(s.size), RowCount: s.rows,
				MinCommitTs: s.min, MaxCommitTs: s.max}
			parts = append(parts, s.data...)
			off += uint64(s.size)
			rows += s.rows
		}
		msg.Ranges = append(msg.Ranges, st)
	}
	return msg, parts, rows
}

// readPubObject reads and decodes publication seq of a group (index only).
func readPubObject(ctx context.Context, store objstore.Store, tenant uint64, group string, seq uint64) (*Pub, error) {
	key := layout.GroupPubKey(tenant, group, seq)
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	p, _, err := DecodePubIndex(key, b)
	if err != nil {
		return nil, err
	}
	if p.TenantId != tenant || p.Group != group || p.Seq != seq {
		return nil, fmt.Errorf("%s: publication says tenant %d group %q seq %d", key, p.TenantId, p.Group, p.Seq)
	}
	return p, nil
}
