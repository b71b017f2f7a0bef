package pool

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// Group publications (format version 2, docs/formats/committed-data-pool.md):
// each sorter process publishes the rows and watermarks of every range it
// owns for one tenant in one log of publications, its group. A publication
// object is a TSGP container holding one GroupPublication (the index),
// followed by the sections it indexes, each a whole committed data file
// (TSCD) of one range. A segment object is a TSGS container (a header and
// the publications first..last, section offsets rewritten), followed by the
// same sections regrouped so that each range's are contiguous.

// Pub is a decoded publication: the message and its membership.
type Pub struct {
	*formatv1.GroupPublication
	runs [][2]uint64 // member ranges, [start, end) in id order
}

// RangeState is one member's interval in a publication.
type RangeState struct {
	Prev, Watermark uint64
	Section         *formatv1.GroupSection // nil: no rows
}

// IsFence reports whether the publication is a FENCE.
func (p *Pub) IsFence() bool { return p.Kind == formatv1.GroupPublication_KIND_FENCE }

// Member reports whether range id is attached at this publication.
func (p *Pub) Member(id uint64) bool {
	i := sort.Search(len(p.runs), func(i int) bool { return p.runs[i][1] > id })
	return i < len(p.runs) && p.runs[i][0] <= id
}

// Members returns every member range id, in order.
func (p *Pub) Members() []uint64 {
	var out []uint64
	for _, r := range p.runs {
		for id := r[0]; id < r[1]; id++ {
			out = append(out, id)
		}
	}
	return out
}

// MemberCount is the number of members.
func (p *Pub) MemberCount() int {
	n := 0
	for _, r := range p.runs {
		n += int(r[1] - r[0])
	}
	return n
}

// State returns a member's interval (ok false when id is not a member).
func (p *Pub) State(id uint64) (RangeState, bool) {
	if !p.Member(id) {
		return RangeState{}, false
	}
	rs := p.Ranges
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RangeId >= id })
	if i < len(rs) && rs[i].RangeId == id {
		return RangeState{Prev: rs[i].PrevWatermark, Watermark: rs[i].Watermark, Section: rs[i].Section}, true
	}
	return RangeState{Prev: p.DefaultPrevWatermark, Watermark: p.DefaultWatermark}, true
}

// FencedBy returns the epoch a FENCE publication fences range id with.
func (p *Pub) FencedBy(id uint64) (epoch uint64, ok bool) {
	for _, f := range p.Fences {
		if f.RangeId == id {
			return f.OwnerEpoch, true
		}
	}
	return 0, false
}

// Watermarks returns every member's watermark after the publication.
func (p *Pub) Watermarks() map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, id := range p.Members() {
		st, _ := p.State(id)
		out[id] = st.Watermark
	}
	return out
}

// encodeRuns turns sorted distinct ids into member_runs.
func encodeRuns(ids []uint64) []uint64 {
	var out []uint64
	var end uint64
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j] == ids[j-1]+1 {
			j++
		}
		out = append(out, ids[i]-end, uint64(j-i))
		end = ids[j-1] + 1
		i = j
	}
	return out
}

// decodeRuns checks member_runs and returns the runs as [start, end).
func decodeRuns(runs []uint64) ([][2]uint64, error) {
	if len(runs)%2 != 0 {
		return nil, fmt.Errorf("member_runs has an odd length %d", len(runs))
	}
	out := make([][2]uint64, 0, len(runs)/2)
	var end uint64
	for i := 0; i < len(runs); i += 2 {
		gap, n := runs[i], runs[i+1]
		if n == 0 || (i > 0 && gap == 0) {
			return nil, fmt.Errorf("member run %d is empty or touches the previous one", i/2)
		}
		if gap > math.MaxUint64-end || n > math.MaxUint64-end-gap {
			return nil, fmt.Errorf("member run %d overflows", i/2)
		}
		start := end + gap
		if start == 0 {
			return nil, errors.New("range id 0 is a member")
		}
		end = start + n
		out = append(out, [2]uint64{start, end})
	}
	return out, nil
}

// checkPub verifies the rules every publication satisfies.
func checkPub(m *formatv1.GroupPublication) (*Pub, error) {
	p := &Pub{GroupPublication: m}
	switch {
	case m.TenantId == 0 || m.Seq == 0:
		return nil, fmt.Errorf("tenant %d seq %d", m.TenantId, m.Seq)
	case !layout.ValidGroupID(m.Group):
		return nil, fmt.Errorf("group id %q", m.Group)
	}
	switch m.Kind {
	case formatv1.GroupPublication_KIND_FENCE:
		if len(m.Fences) == 0 || len(m.MemberRuns) > 0 || len(m.Ranges) > 0 {
			return nil, errors.New("a FENCE publication fences nothing or lists members")
		}
		seen := map[uint64]bool{}
		for _, f := range m.Fences {
			if f.RangeId == 0 || seen[f.RangeId] {
				return nil, fmt.Errorf("fence of range %d is zero or repeated", f.RangeId)
			}
			seen[f.RangeId] = true
		}
		return p, nil
	case formatv1.GroupPublication_KIND_PUBLISH:
	default:
		return nil, fmt.Errorf("unknown kind %d", m.Kind)
	}
	if len(m.Fences) > 0 {
		return nil, errors.New("a PUBLISH publication fences ranges")
	}
	var err error
	if p.runs, err = decodeRuns(m.MemberRuns); err != nil {
		return nil, err
	}
	if m.DefaultWatermark < m.DefaultPrevWatermark {
		return nil, fmt.Errorf("default watermark %d below its prev %d", m.DefaultWatermark, m.DefaultPrevWatermark)
	}
	var last uint64
	for i, r := range m.Ranges {
		switch {
		case i > 0 && r.RangeId <= last:
			return nil, fmt.Errorf("range %d listed after %d", r.RangeId, last)
		case !p.Member(r.RangeId):
			return nil, fmt.Errorf("range %d has a state but is not a member", r.RangeId)
		case r.Watermark < r.PrevWatermark:
			return nil, fmt.Errorf("range %d: watermark %d below prev %d", r.RangeId, r.Watermark, r.PrevWatermark)
		}
		if s := r.Section; s != nil {
			if s.Length == 0 || s.RowCount == 0 || s.MinCommitTs > s.MaxCommitTs || s.MinCommitTs <= r.PrevWatermark || s.MaxCommitTs > r.Watermark ||
				s.Offset > math.MaxInt64-s.Length {
				return nil, fmt.Errorf("range %d: section of %d rows in [%d, %d] at %d+%d does not fit (%d, %d]", r.RangeId,
					s.RowCount, s.MinCommitTs, s.MaxCommitTs, s.Offset, s.Length, r.PrevWatermark, r.Watermark)
			}
		}
		last = r.RangeId
	}
	return p, nil
}

// EncodePub builds a publication object in one slice: the index container,
// then the data, given in parts (the ranges' sections, in the order of
// their offsets). The group writer does not join them: it writes
// EncodePubIndex's index and the sections as the parts of one object
// (objstore.PutIfAbsentParts), the same bytes.
func EncodePub(m *formatv1.GroupPublication, data ...[]byte) ([]byte, error) {
	idx, err := EncodePubIndex(m, data...)
	if err != nil || objstore.PartsLen(data) == 0 {
		return idx, err
	}
	return slices.Concat(append([][]byte{idx}, data...)...), nil
}

// EncodePubIndex checks a publication against its data (given in parts,
// as to EncodePub, which it does not copy) and encodes its index
// container: the first bytes of the object, the data following it.
func EncodePubIndex(m *formatv1.GroupPublication, data ...[]byte) ([]byte, error) {
	if _, err := checkPub(m); err != nil {
		return nil, fmt.Errorf("refusing to write a bad publication: %w", err)
	}
	size := uint64(objstore.PartsLen(data))
	for _, r := range m.Ranges {
		if s := r.Section; s != nil && s.Offset+s.Length > size {
			return nil, fmt.Errorf("refusing to write a bad publication: range %d's section runs past the data", r.RangeId)
		}
	}
	w := container.NewWriter(container.KindGroupPub, container.Options{Codec: container.CodecZstd, SizeHint: 256 + len(m.MemberRuns)*2 + len(m.Ranges)*32})
	if err := w.AppendMessage(m); err != nil {
		return nil, err
	}
	return w.Finish()
}

// DecodePubIndex decodes the index of a publication object from its first
// bytes, and returns where its data starts. A prefix too short to hold the
// index fails with a *container.ShortError saying how much to read.
func DecodePubIndex(name string, b []byte) (*Pub, int64, error) {
	m := &formatv1.GroupPublication{}
	r, n, err := openIndex(name, b, container.KindGroupPub, m)
	if err != nil {
		return nil, 0, err
	}
	if _, err := r.Next(); err != io.EOF {
		if err == nil {
			return nil, 0, r.Corrupt(nil, "more than one record in a publication index")
		}
		return nil, 0, err
	}
	p, err := checkPub(m)
	if err != nil {
		return nil, 0, r.Corrupt(err, "bad group publication")
	}
	return p, n, nil
}

// openIndex opens the index container of kind at the start of b and
// decodes its first record into first; n is the container's length.
func openIndex(name string, b []byte, kind container.Kind, first proto.Message) (r *container.Reader, n int64, err error) {
	if n, err = container.Measure(name, b, kind); err != nil {
		return nil, 0, err
	}
	if r, err = container.Open(name, b[:n], kind); err != nil {
		return nil, 0, err
	}
	if err := r.NextMessage(first); err != nil {
		if err == io.EOF {
			return nil, 0, r.Corrupt(nil, "no header")
		}
		return nil, 0, err
	}
	return r, n, nil
}

// Segment is a decoded segment index: its header and publications.
type Segment struct {
	Header *formatv1.GroupSegmentHeader
	Pubs   []*Pub // Pubs[i] has seq Header.FirstSeq + i
}

// Pub returns publication seq of the segment, nil outside it.
func (s *Segment) Pub(seq uint64) *Pub {
	if seq < s.Header.FirstSeq || seq > s.Header.LastSeq {
		return nil
	}
	return s.Pubs[seq-s.Header.FirstSeq]
}

// maxSegmentPubs bounds the publications of one segment a decoder accepts.
const maxSegmentPubs = 1 << 20

// EncodeSegment builds a segment object: the index container (header and
// publications), then data.
func EncodeSegment(h *formatv1.GroupSegmentHeader, pubs []*formatv1.GroupPublication, data []byte) ([]byte, error) {
	b, err := encodeSegmentIndex(h, pubs)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// encodeSegmentIndex builds the index container of a segment object, which
// its data follows.
func encodeSegmentIndex(h *formatv1.GroupSegmentHeader, pubs []*formatv1.GroupPublication) ([]byte, error) {
	w := container.NewWriter(container.KindGroupSegment, container.Options{Codec: container.CodecZstd})
	if err := w.AppendMessage(h); err != nil {
		return nil, err
	}
	for _, p := range pubs {
		if err := w.AppendMessage(p); err != nil {
			return nil, err
		}
	}
	b, err := w.Finish()
	if err != nil {
		return nil, err
	}
	if _, _, err := DecodeSegmentIndex("new segment", b); err != nil {
		return nil, fmt.Errorf("refusing to write a bad segment: %w", err)
	}
	return b, nil
}

// DecodeSegmentIndex decodes the index of a segment object from its first
// bytes and returns where its data starts (see DecodePubIndex).
func DecodeSegmentIndex(name string, b []byte) (*Segment, int64, error) {
	s := &Segment{Header: &formatv1.GroupSegmentHeader{}}
	r, n, err := openIndex(name, b, container.KindGroupSegment, s.Header)
	if err != nil {
		return nil, 0, err
	}
	h := s.Header
	if h.TenantId == 0 || !layout.ValidGroupID(h.Group) || h.FirstSeq == 0 || h.LastSeq < h.FirstSeq || h.LastSeq-h.FirstSeq >= maxSegmentPubs {
		return nil, 0, r.Corrupt(nil, "bad segment header: tenant %d group %q seqs %d..%d", h.TenantId, h.Group, h.FirstSeq, h.LastSeq)
	}
	for {
		m := &formatv1.GroupPublication{}
		err := r.NextMessage(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		want := h.FirstSeq + uint64(len(s.Pubs))
		if want > h.LastSeq {
			return nil, 0, r.Corrupt(nil, "more publications than seqs %d..%d", h.FirstSeq, h.LastSeq)
		}
		p, err := checkPub(m)
		if err != nil {
			return nil, 0, r.Corrupt(err, "bad group publication")
		}
		if m.Seq != want || m.TenantId != h.TenantId || m.Group != h.Group {
			return nil, 0, r.Corrupt(nil, "publication of tenant %d group %q seq %d, want seq %d of the segment's", m.TenantId, m.Group, m.Seq, want)
		}
		s.Pubs = append(s.Pubs, p)
	}
	if uint64(len(s.Pubs)) != h.LastSeq-h.FirstSeq+1 {
		return nil, 0, fmt.Errorf("%s: segment %d..%d holds %d publications: %w", name, h.FirstSeq, h.LastSeq, len(s.Pubs), container.ErrCorrupt)
	}
	return s, n, nil
}

// decodeSection decodes one range's section (a whole committed data file)
// and checks it against the publication's interval; own: as decodeFile's.
func decodeSection(name string, b []byte, own bool, tenant, rangeID uint64, st RangeState, alloc func(int) []Row) (*cachedFile, error) {
	v, _, err := decodeFile(name, b, own, alloc)
	if err != nil {
		return nil, err
	}
	f := v.(*cachedFile)
	h := f.header
	if h.TenantId != tenant || h.RangeId != rangeID || h.PrevWatermark != st.Prev || h.Watermark != st.Watermark {
		return nil, fmt.Errorf("%s: section header (tenant %d range %d (%d, %d]) does not match the index (tenant %d range %d (%d, %d]): %w",
			name, h.TenantId, h.RangeId, h.PrevWatermark, h.Watermark, tenant, rangeID, st.Prev, st.Watermark, container.ErrCorrupt)
	}
	if uint64(len(f.rows)) != st.Section.RowCount {
		return nil, fmt.Errorf("%s: section of range %d has %d rows, the index says %d: %w", name, rangeID, len(f.rows), st.Section.RowCount, container.ErrCorrupt)
	}
	if n := len(f.rows); n > 0 && (f.rows[0].CommitTs != st.Section.MinCommitTs || f.rows[n-1].CommitTs != st.Section.MaxCommitTs) {
		return nil, fmt.Errorf("%s: section of range %d spans [%d, %d], the index says [%d, %d]: %w", name, rangeID,
			f.rows[0].CommitTs, f.rows[n-1].CommitTs, st.Section.MinCommitTs, st.Section.MaxCommitTs, container.ErrCorrupt)
	}
	return f, nil
}

// sectionSlice returns a section's bytes from data (the bytes after an
// index), or ok false when data does not hold them all.
func sectionSlice(data []byte, s *formatv1.GroupSection) ([]byte, bool) {
	if s.Offset+s.Length > uint64(len(data)) {
		return nil, false
	}
	return data[s.Offset : s.Offset+s.Length : s.Offset+s.Length], true
}

// sortedIDs returns the keys of m in order.
func sortedIDs[V any](m map[uint64]V) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
