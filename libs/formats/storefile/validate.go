package storefile

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// Incarnation is a decoded region incarnation: one leadership of one region
// version.
type Incarnation struct {
	Region *metapb.Region
	Term   uint64
}

// Ref names the incarnation.
func (i Incarnation) Ref() *formatv1.IncarnationRef {
	return &formatv1.IncarnationRef{RegionId: i.Region.GetId(), Version: i.Region.GetRegionEpoch().GetVersion(), Term: i.Term}
}

// Encode turns the incarnation into its wire form.
func (i Incarnation) Encode() (*formatv1.RegionIncarnation, error) {
	b, err := i.Region.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal region %d: %w", i.Region.GetId(), err)
	}
	return &formatv1.RegionIncarnation{Region: b, Term: i.Term}, nil
}

func (i Incarnation) ref() Ref {
	return Ref{RegionID: i.Region.GetId(), Version: i.Region.GetRegionEpoch().GetVersion(), Term: i.Term}
}

// DecodeIncarnation decodes and checks a wire incarnation.
func DecodeIncarnation(ri *formatv1.RegionIncarnation) (Incarnation, error) {
	if ri == nil {
		return Incarnation{}, errors.New("missing region incarnation")
	}
	r := &metapb.Region{}
	if err := r.Unmarshal(ri.Region); err != nil {
		return Incarnation{}, fmt.Errorf("region does not decode as metapb.Region: %w", err)
	}
	if r.Id == 0 {
		return Incarnation{}, errors.New("region id is 0")
	}
	if r.RegionEpoch == nil {
		return Incarnation{}, fmt.Errorf("region %d has no epoch", r.Id)
	}
	if len(r.EndKey) > 0 && bytes.Compare(r.StartKey, r.EndKey) >= 0 {
		return Incarnation{}, fmt.Errorf("region %d: start key %x is not below end key %x", r.Id, r.StartKey, r.EndKey)
	}
	if ri.Term == 0 {
		return Incarnation{}, fmt.Errorf("region %d: term is 0", r.Id)
	}
	return Incarnation{Region: r, Term: ri.Term}, nil
}

// FormatVersion is the store change file format version this package
// writes and the newest it reads (docs/formats/store-change-file.md).
const FormatVersion = 2

// checkHeader applies the header rules that the header alone can be checked
// against. The leader list itself is checked by the Stream that reads it.
func checkHeader(h *formatv1.StoreFileHeader) error {
	switch {
	case h == nil:
		return errors.New("missing header")
	case h.ClusterId == 0:
		return errors.New("cluster_id is 0")
	case h.StoreId == 0:
		return errors.New("store_id is 0")
	case h.Seq == 0:
		return errors.New("seq is 0 (sequence numbers start at 1)")
	case h.MaxTs < h.PrevMaxTs:
		return fmt.Errorf("max_ts %d is below prev_max_ts %d", h.MaxTs, h.PrevMaxTs)
	case h.Seq == 1 && h.PrevMaxTs != 0:
		return fmt.Errorf("seq 1 has prev_max_ts %d, want 0", h.PrevMaxTs)
	case h.FormatVersion > FormatVersion:
		return fmt.Errorf("format version %d is newer than this reader knows (%d)", h.FormatVersion, FormatVersion)
	}
	delta := len(h.LeaderAdded) > 0 || len(h.LeaderRemoved) > 0 || h.LeaderBaseMaxTs != 0
	switch {
	case h.LeaderBaseSeq == 0 && delta:
		return errors.New("leader_added, leader_removed or leader_base_max_ts without leader_base_seq")
	case h.LeaderBaseSeq == 0:
		return nil
	case h.FormatVersion < FormatVersion:
		return fmt.Errorf("a delta leader list (leader_base_seq %d) in a format version %d header", h.LeaderBaseSeq, max(1, h.FormatVersion))
	case h.LeaderBaseSeq >= h.Seq:
		return fmt.Errorf("leader_base_seq %d is not below seq %d", h.LeaderBaseSeq, h.Seq)
	case h.LeaderBaseMaxTs > h.PrevMaxTs:
		return fmt.Errorf("leader_base_max_ts %d is above prev_max_ts %d", h.LeaderBaseMaxTs, h.PrevMaxTs)
	case len(h.LeaderRegions) > 0:
		return errors.New("a delta header (leader_base_seq set) with leader_regions")
	}
	ids := make(map[uint64]bool, len(h.LeaderAdded)+len(h.LeaderRemoved))
	for i, ri := range h.LeaderAdded {
		inc, err := DecodeIncarnation(ri)
		if err != nil {
			return fmt.Errorf("leader_added[%d]: %w", i, err)
		}
		if ids[inc.Region.Id] {
			return fmt.Errorf("leader_added[%d]: region %d listed twice", i, inc.Region.Id)
		}
		ids[inc.Region.Id] = true
	}
	for i, id := range h.LeaderRemoved {
		if id == 0 || ids[id] {
			return fmt.Errorf("leader_removed[%d]: region %d is 0, listed twice or also added", i, id)
		}
		ids[id] = true
	}
	return nil
}

// checkFullList decodes and checks a full leader list, as a reader that
// starts at its file does.
func checkFullList(list []*formatv1.RegionIncarnation) error {
	ids := make(map[uint64]bool, len(list))
	for i, ri := range list {
		inc, err := DecodeIncarnation(ri)
		if err != nil {
			return fmt.Errorf("leader_regions[%d]: %w", i, err)
		}
		if ids[inc.Region.Id] {
			return fmt.Errorf("leader_regions[%d]: region %d listed twice", i, inc.Region.Id)
		}
		ids[inc.Region.Id] = true
	}
	return nil
}

// peekRef reads the incarnation an encoded RegionIncarnation names without
// decoding the whole metapb.Region, for checking a full list against the
// leaders a stream already has.
func peekRef(ri *formatv1.RegionIncarnation) (Ref, error) {
	if ri == nil {
		return Ref{}, errors.New("missing region incarnation")
	}
	ref := Ref{Term: ri.Term}
	hasEpoch := false
	b := ri.Region
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Ref{}, errors.New("region does not decode as metapb.Region")
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return Ref{}, errors.New("region does not decode as metapb.Region: bad id")
			}
			ref.RegionID, b = v, b[n:]
			continue
		case num == 4 && typ == protowire.BytesType:
			ep, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return Ref{}, errors.New("region does not decode as metapb.Region: bad epoch")
			}
			v, err := epochVersion(ep)
			if err != nil {
				return Ref{}, err
			}
			ref.Version, hasEpoch, b = v, true, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return Ref{}, errors.New("region does not decode as metapb.Region")
		}
		b = b[n:]
	}
	switch {
	case ref.RegionID == 0:
		return Ref{}, errors.New("region id is 0")
	case !hasEpoch:
		return Ref{}, fmt.Errorf("region %d has no epoch", ref.RegionID)
	case ref.Term == 0:
		return Ref{}, fmt.Errorf("region %d: term is 0", ref.RegionID)
	}
	return ref, nil
}

// epochVersion reads metapb.RegionEpoch.version (field 2).
func epochVersion(b []byte) (uint64, error) {
	var version uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, errors.New("region epoch does not decode")
		}
		b = b[n:]
		if num == 2 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, errors.New("region epoch does not decode")
			}
			version, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, errors.New("region epoch does not decode")
		}
		b = b[n:]
	}
	return version, nil
}

// checkRow applies the row rules of the spec.
func checkRow(row *cdcpb.Event_Row, maxTs uint64) error {
	if len(row.Key) == 0 {
		return errors.New("row with an empty key")
	}
	if row.StartTs == 0 {
		return fmt.Errorf("row %x: start_ts is 0", row.Key)
	}
	if row.StartTs > maxTs {
		return fmt.Errorf("row %x: start_ts %d is above the file's max_ts %d", row.Key, row.StartTs, maxTs)
	}
	switch row.Type {
	case cdcpb.Event_PREWRITE:
		if row.OpType != cdcpb.Event_Row_PUT && row.OpType != cdcpb.Event_Row_DELETE {
			return fmt.Errorf("prewrite of %x at %d: op_type %s, want PUT or DELETE", row.Key, row.StartTs, row.OpType)
		}
		return nil
	case cdcpb.Event_ROLLBACK:
		return nil
	case cdcpb.Event_COMMIT, cdcpb.Event_COMMITTED:
		if row.OpType != cdcpb.Event_Row_PUT && row.OpType != cdcpb.Event_Row_DELETE {
			return fmt.Errorf("%s of %x at %d: op_type %s, want PUT or DELETE", row.Type, row.Key, row.CommitTs, row.OpType)
		}
		if row.CommitTs <= row.StartTs {
			return fmt.Errorf("%s of %x: commit_ts %d is not above start_ts %d", row.Type, row.Key, row.CommitTs, row.StartTs)
		}
		if row.CommitTs > maxTs {
			return fmt.Errorf("%s of %x: commit_ts %d is above the file's max_ts %d", row.Type, row.Key, row.CommitTs, maxTs)
		}
		return nil
	default:
		return fmt.Errorf("row %x: log type %s is not one a store file carries", row.Key, row.Type)
	}
}
