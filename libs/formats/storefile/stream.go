package storefile

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// BaseLoader returns the header of the stream's file seq, whose max_ts is
// maxTs (so its object key is known): the base a delta header names.
// Reading it takes a ranged GET of the file's first block (ReadHeader).
type BaseLoader func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error)

// ErrNeedBase is matched (errors.Is) by the error of a Stream without a
// BaseLoader that must start at a file whose header is a delta.
var ErrNeedBase = errors.New("the header is a delta against an earlier file and no base loader was given")

// LeaderMismatchError is a header whose leader list disagrees with what the
// stream's earlier files add up to: the list names an incarnation of Region
// (Listed) other than the one the stream leads there (Led; zero when it
// leads none), or leaves out or drops one it leads. Open wraps it in a
// *container.CorruptError.
type LeaderMismatchError struct {
	Region      uint64
	Listed, Led Ref
}

func (e *LeaderMismatchError) Error() string {
	return fmt.Sprintf("the header lists region %d as %s, but the stream's records add up to %s", e.Region, e.Listed, e.Led)
}

// Ref names a region incarnation: (region id, epoch version, term).
type Ref struct{ RegionID, Version, Term uint64 }

func (r Ref) String() string {
	if r == (Ref{}) {
		return "not led"
	}
	return fmt.Sprintf("version %d term %d", r.Version, r.Term)
}

// Stream reads the files of one store's stream in seq order. It carries
// what the store leads from one file to the next, so that reading a file
// costs what changed in it: a header in format version 2 lists the leaders
// in full only periodically and otherwise as a delta, which the Stream
// checks against what the earlier files' records add up to. A Stream that
// starts at a delta header (the first file it reads, or one that does not
// follow the last file read whole) reads the full list from the base file's
// header through its BaseLoader. Not safe for concurrent use.
type Stream struct {
	load    BaseLoader
	set     leaderSet[led]
	at      uint64 // seq of the last file read whole; 0: the next file starts afresh
	maxTs   uint64 // ... and its max_ts
	ids     [3]uint64
	full    uint64 // seq of the stream's last version 2 file with a full list (0: none known)
	groupTs uint64 // ts of the last LeaderResolvedTs read
	check   func(name string, h *formatv1.StoreFileHeader) error
	arena   *recordArena // the arrays of the last file's records (Recycle)
}

// SetCheck makes Open call check with each file's name and header before
// it reads the leader list (which may read a base file): a caller that
// knows which file it expects refuses another one first. Open returns
// check's error as is.
func (s *Stream) SetCheck(check func(name string, h *formatv1.StoreFileHeader) error) {
	s.check = check
}

// NewStream returns a Stream that reads full lists of delta headers through
// load (nil: a delta header is an error matching ErrNeedBase unless the
// stream read the files before it).
func NewStream(load BaseLoader) *Stream {
	return &Stream{load: load, set: newLeaderSet(func(a, b led) bool { return a.ref == b.ref }), arena: newRecordArena()}
}

// Recycle gives back the memory the last file opened was decompressed and
// its records decoded into (blocks, events, rows; the keys and values
// point into the blocks, or into the file's data for blocks stored
// uncompressed), for the next files: call it once nothing uses those
// records any more. Without it, each file's memory is new.
func (s *Stream) Recycle() { s.arena.recycle() }

// Reset makes the next file start afresh (after a file was not read whole).
func (s *Stream) Reset() { s.at = 0 }

// Base is the seq of the stream's last format version 2 file whose header
// holds the full leader list, at the point read (0 if none): the base the
// next file's delta header will name, which must stay readable while a
// reader may start at a later file.
func (s *Stream) Base() uint64 { return s.full }

// Open checks the file's framing and header and returns its reader. name
// (the object key) is used in errors. The file continues the stream when it
// follows the last file read to its end; the stream carries on only once
// its reader reaches io.EOF.
func (s *Stream) Open(name string, data []byte) (*Reader, error) {
	s.arena.forget() // the last file's records stay their user's unless Recycled
	prev, prevMax := s.at, s.maxTs
	s.at = 0
	c, err := container.Open(name, data, container.KindStoreChange)
	if err != nil {
		return nil, err
	}
	// Events point into the records (fastChangeDataEvent): each block
	// stays where it was decompressed until the stream's caller is done.
	if s.arena != nil {
		c.KeepBlocksIn(s.arena.blocks.take)
	} else {
		c.KeepBlocks()
	}
	r := &Reader{c: c, s: s}
	if err := c.NextMessage(&r.header); err != nil {
		if err == io.EOF {
			return nil, c.Corrupt(nil, "file has no header")
		}
		return nil, err
	}
	h := &r.header
	if err := checkHeader(h); err != nil {
		return nil, c.Corrupt(err, "bad store file header")
	}
	if s.check != nil {
		if err := s.check(name, h); err != nil {
			return nil, err
		}
	}
	ids := [3]uint64{h.ClusterId, h.TenantId, h.StoreId}
	cont := prev != 0 && h.Seq == prev+1 && ids == s.ids && h.PrevMaxTs == prevMax
	r.fresh = !cont
	if !cont {
		s.full, s.groupTs = 0, 0
	}
	s.ids = ids
	if err := s.begin(r); err != nil {
		if errors.Is(err, ErrNeedBase) || errors.Is(err, ErrBaseLoad) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, c.Corrupt(err, "bad leader list")
	}
	return r, nil
}

// ErrBaseLoad is matched (errors.Is) by Open's error when the BaseLoader
// failed: the file itself may be fine (retry, or restore the base file).
var ErrBaseLoad = errors.New("read the base header")

// begin makes the stream's leader list the one of r's header.
func (s *Stream) begin(r *Reader) error {
	h := &r.header
	switch {
	case h.LeaderBaseSeq == 0 && !r.fresh:
		if err := s.checkFull(r); err != nil {
			return err
		}
	case h.LeaderBaseSeq == 0:
		if err := s.loadFull(h.LeaderRegions); err != nil {
			return err
		}
	case !r.fresh:
		if h.LeaderBaseSeq != s.full {
			return fmt.Errorf("the header is a delta against file %d, but the stream's last full leader list is in file %d", h.LeaderBaseSeq, s.full)
		}
		return s.checkDelta(h)
	default:
		return s.loadDelta(h)
	}
	if h.FormatVersion >= FormatVersion {
		s.full = h.Seq
	}
	s.set.rebase()
	return nil
}

// loadFull makes list the stream's leaders.
func (s *Stream) loadFull(list []*formatv1.RegionIncarnation) error {
	s.set.reset()
	for i, ri := range list {
		inc, err := DecodeIncarnation(ri)
		if err != nil {
			return fmt.Errorf("leader_regions[%d]: %w", i, err)
		}
		if _, dup := s.set.get(inc.Region.Id); dup {
			return fmt.Errorf("leader_regions[%d]: region %d listed twice", i, inc.Region.Id)
		}
		s.set.led[inc.Region.Id] = leanOf(inc)
	}
	return nil
}

// checkFull checks a full list against the stream's leaders: it may leave
// out incarnations (a restarted store lost them without an END; they are
// dropped) but lists nothing else.
func (s *Stream) checkFull(r *Reader) error {
	list := r.header.LeaderRegions
	listed := make(map[uint64]struct{}, len(list))
	for i, ri := range list {
		ref, err := peekRef(ri)
		if err != nil {
			return fmt.Errorf("leader_regions[%d]: %w", i, err)
		}
		if _, dup := listed[ref.RegionID]; dup {
			return fmt.Errorf("leader_regions[%d]: region %d listed twice", i, ref.RegionID)
		}
		listed[ref.RegionID] = struct{}{}
		cur, ok := s.set.get(ref.RegionID)
		if !ok || cur.ref != ref {
			return &LeaderMismatchError{Region: ref.RegionID, Listed: ref, Led: cur.ref}
		}
	}
	if len(listed) == len(s.set.led) {
		return nil
	}
	for id, l := range s.set.led {
		if _, ok := listed[id]; !ok {
			r.dropped = append(r.dropped, l.incarnation())
		}
	}
	slices.SortFunc(r.dropped, func(a, b Incarnation) int { return cmp.Compare(a.Region.Id, b.Region.Id) })
	for _, inc := range r.dropped {
		s.set.remove(inc.Region.Id)
	}
	return nil
}

// checkDelta checks a delta header against how the stream's leaders differ
// from its last full list.
func (s *Stream) checkDelta(h *formatv1.StoreFileHeader) error {
	added, removed := s.set.delta()
	hr := slices.Clone(h.LeaderRemoved)
	slices.Sort(hr)
	if !slices.Equal(hr, removed) {
		id := firstDiff(hr, removed)
		cur, _ := s.set.get(id)
		return &LeaderMismatchError{Region: id, Led: cur.ref}
	}
	listed := make(map[uint64]struct{}, len(h.LeaderAdded))
	for i, ri := range h.LeaderAdded {
		ref, err := peekRef(ri)
		if err != nil {
			return fmt.Errorf("leader_added[%d]: %w", i, err)
		}
		cur, _ := s.set.get(ref.RegionID)
		_, want := slices.BinarySearch(added, ref.RegionID)
		if _, dup := listed[ref.RegionID]; dup || !want || cur.ref != ref {
			return &LeaderMismatchError{Region: ref.RegionID, Listed: ref, Led: cur.ref}
		}
		listed[ref.RegionID] = struct{}{}
	}
	for _, id := range added {
		if _, ok := listed[id]; !ok {
			cur, _ := s.set.get(id)
			return &LeaderMismatchError{Region: id, Led: cur.ref}
		}
	}
	return nil
}

// firstDiff returns the smallest id in one sorted list and not the other.
func firstDiff(a, b []uint64) uint64 {
	i, j := 0, 0
	for i < len(a) && j < len(b) && a[i] == b[j] {
		i++
		j++
	}
	switch {
	case i == len(a):
		return b[j]
	case j == len(b):
		return a[i]
	}
	return min(a[i], b[j])
}

// loadDelta starts the stream at a delta header: the base's full list,
// then the delta.
func (s *Stream) loadDelta(h *formatv1.StoreFileHeader) error {
	if s.load == nil {
		return fmt.Errorf("leader list of file %d: %w (file %d)", h.Seq, ErrNeedBase, h.LeaderBaseSeq)
	}
	base, err := s.load(h.LeaderBaseSeq, h.LeaderBaseMaxTs)
	if err != nil {
		return fmt.Errorf("%w of file %d: %w", ErrBaseLoad, h.LeaderBaseSeq, err)
	}
	switch {
	case base == nil:
		return fmt.Errorf("%w of file %d: none", ErrBaseLoad, h.LeaderBaseSeq)
	case base.ClusterId != h.ClusterId || base.TenantId != h.TenantId || base.StoreId != h.StoreId ||
		base.Seq != h.LeaderBaseSeq || base.MaxTs != h.LeaderBaseMaxTs:
		return fmt.Errorf("the base header is of cluster %d tenant %d store %d seq %d max_ts %d, want store %d seq %d max_ts %d",
			base.ClusterId, base.TenantId, base.StoreId, base.Seq, base.MaxTs, h.StoreId, h.LeaderBaseSeq, h.LeaderBaseMaxTs)
	case base.FormatVersion < FormatVersion || base.LeaderBaseSeq != 0:
		return fmt.Errorf("the base, file %d, does not carry a format version 2 full leader list", base.Seq)
	}
	if err := checkHeader(base); err != nil {
		return fmt.Errorf("the base, file %d: %w", base.Seq, err)
	}
	if err := s.loadFull(base.LeaderRegions); err != nil {
		return fmt.Errorf("the base, file %d: %w", base.Seq, err)
	}
	s.full = base.Seq
	for _, id := range h.LeaderRemoved {
		if _, ok := s.set.get(id); !ok {
			return fmt.Errorf("leader_removed: region %d is not in the base's list", id)
		}
		s.set.remove(id)
	}
	for i, ri := range h.LeaderAdded {
		inc, err := DecodeIncarnation(ri)
		if err != nil {
			return fmt.Errorf("leader_added[%d]: %w", i, err)
		}
		if cur, ok := s.set.get(inc.Region.Id); ok && cur.ref == inc.ref() {
			return fmt.Errorf("leader_added[%d]: region %d version %d term %d is in the base's list already",
				i, inc.Region.Id, inc.Region.GetRegionEpoch().GetVersion(), inc.Term)
		}
		s.set.set(inc.Region.Id, leanOf(inc))
	}
	return nil
}
