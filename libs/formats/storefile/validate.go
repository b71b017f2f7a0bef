package storefile

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
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

func checkHeader(h *formatv1.StoreFileHeader) error {
	_, err := decodeHeader(h, nil)
	return err
}

// decodeHeader checks the header and returns its leader incarnations.
func decodeHeader(h *formatv1.StoreFileHeader, cache *IncarnationCache) (map[uint64]Incarnation, error) {
	switch {
	case h == nil:
		return nil, errors.New("missing header")
	case h.ClusterId == 0:
		return nil, errors.New("cluster_id is 0")
	case h.StoreId == 0:
		return nil, errors.New("store_id is 0")
	case h.Seq == 0:
		return nil, errors.New("seq is 0 (sequence numbers start at 1)")
	case h.MaxTs < h.PrevMaxTs:
		return nil, fmt.Errorf("max_ts %d is below prev_max_ts %d", h.MaxTs, h.PrevMaxTs)
	case h.Seq == 1 && h.PrevMaxTs != 0:
		return nil, fmt.Errorf("seq 1 has prev_max_ts %d, want 0", h.PrevMaxTs)
	}
	leaders := make(map[uint64]Incarnation, len(h.LeaderRegions))
	for i, ri := range h.LeaderRegions {
		inc, err := cache.decode(ri)
		if err != nil {
			return nil, fmt.Errorf("leader_regions[%d]: %w", i, err)
		}
		if _, dup := leaders[inc.Region.Id]; dup {
			return nil, fmt.Errorf("leader_regions[%d]: region %d listed twice", i, inc.Region.Id)
		}
		leaders[inc.Region.Id] = inc
	}
	return leaders, nil
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
