package storefile

import (
	"errors"
	"fmt"
	"io"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// Record is one decoded record after the header: exactly one field is set.
type Record struct {
	Event        *cdcpb.ChangeDataEvent
	RegionChange *formatv1.RegionChange
	// Incarnation is RegionChange's incarnation, decoded.
	Incarnation Incarnation
}

// Reader decodes and checks one store change file held in memory.
type Reader struct {
	c      *container.Reader
	header formatv1.StoreFileHeader
	leader map[uint64]Incarnation // region id -> incarnation led at this point
	rec    formatv1.StoreRecord
	cache  *IncarnationCache
}

// Open checks the file's framing and header. name (the object key) is used in
// errors.
func Open(name string, data []byte) (*Reader, error) { return OpenCached(name, data, nil) }

// OpenCached is Open with a cache of decoded incarnations shared by the
// files of one store, read in order.
func OpenCached(name string, data []byte, cache *IncarnationCache) (*Reader, error) {
	cache.nextFile()
	c, err := container.Open(name, data, container.KindStoreChange)
	if err != nil {
		return nil, err
	}
	r := &Reader{c: c, cache: cache}
	if err := c.NextMessage(&r.header); err != nil {
		if err == io.EOF {
			return nil, c.Corrupt(nil, "file has no header")
		}
		return nil, err
	}
	if r.leader, err = decodeHeader(&r.header, cache); err != nil {
		return nil, c.Corrupt(err, "bad store file header")
	}
	return r, nil
}

// Header is the file's header.
func (r *Reader) Header() *formatv1.StoreFileHeader { return &r.header }

// Leaders is the number of incarnations the store leads at this point.
func (r *Reader) Leaders() int { return len(r.leader) }

// Leader returns the incarnation of region id the store leads at the current
// point of the stream.
func (r *Reader) Leader(regionID uint64) (Incarnation, bool) {
	inc, ok := r.leader[regionID]
	return inc, ok
}

// Next returns the next record, or io.EOF after the last one (the file's
// trailer has then been checked).
func (r *Reader) Next() (Record, error) {
	raw, err := r.c.Next()
	if err != nil {
		return Record{}, err
	}
	r.rec.Reset()
	if err := proto.Unmarshal(raw, &r.rec); err != nil {
		return Record{}, r.c.Corrupt(err, "does not decode as StoreRecord")
	}
	switch v := r.rec.Record.(type) {
	case *formatv1.StoreRecord_ChangeDataEvent:
		ev := &cdcpb.ChangeDataEvent{}
		if err := ev.Unmarshal(v.ChangeDataEvent); err != nil {
			return Record{}, r.c.Corrupt(err, "change_data_event does not decode as cdcpb.ChangeDataEvent")
		}
		if err := r.checkEvent(ev); err != nil {
			return Record{}, r.c.Corrupt(err, "bad change data event")
		}
		return Record{Event: ev}, nil
	case *formatv1.StoreRecord_RegionChange:
		inc, err := r.applyRegionChange(v.RegionChange)
		if err != nil {
			return Record{}, r.c.Corrupt(err, "bad region change")
		}
		return Record{RegionChange: v.RegionChange, Incarnation: inc}, nil
	default:
		return Record{}, r.c.Corrupt(nil, "StoreRecord has no record set (unknown kind from a newer producer?)")
	}
}

func (r *Reader) led(regionID uint64, what string) error {
	if _, ok := r.leader[regionID]; !ok {
		return fmt.Errorf("%s for region %d, which the store does not lead at this point", what, regionID)
	}
	return nil
}

func (r *Reader) checkEvent(ev *cdcpb.ChangeDataEvent) error {
	maxTs := r.header.MaxTs
	for _, e := range ev.Events {
		switch x := e.Event.(type) {
		case *cdcpb.Event_Entries_:
			if err := r.led(e.RegionId, "rows"); err != nil {
				return err
			}
			for _, row := range x.Entries.GetEntries() {
				if err := checkRow(row, maxTs); err != nil {
					return fmt.Errorf("region %d: %w", e.RegionId, err)
				}
			}
		case *cdcpb.Event_ResolvedTs:
			if err := r.led(e.RegionId, "resolved ts"); err != nil {
				return err
			}
			if x.ResolvedTs > maxTs {
				return fmt.Errorf("region %d: resolved ts %d above the file's max_ts %d", e.RegionId, x.ResolvedTs, maxTs)
			}
		}
	}
	if rt := ev.ResolvedTs; rt != nil {
		if rt.Ts > maxTs {
			return fmt.Errorf("resolved ts %d above the file's max_ts %d", rt.Ts, maxTs)
		}
		for _, id := range rt.Regions {
			if err := r.led(id, "resolved ts"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reader) applyRegionChange(rc *formatv1.RegionChange) (Incarnation, error) {
	inc, err := r.cache.decode(rc.Incarnation)
	if err != nil {
		return inc, err
	}
	id := inc.Region.Id
	switch rc.Kind {
	case formatv1.RegionChange_KIND_START:
		if cur, ok := r.leader[id]; ok {
			return inc, fmt.Errorf("start of region %d term %d while the store still leads it (version %d term %d)",
				id, inc.Term, cur.Region.GetRegionEpoch().GetVersion(), cur.Term)
		}
		if rc.Reason == formatv1.RegionChange_REASON_UNSPECIFIED {
			return inc, fmt.Errorf("start of region %d without a reason", id)
		}
		if rc.Reason == formatv1.RegionChange_REASON_TAKEOVER {
			return inc, fmt.Errorf("start of region %d with reason %s (a takeover writes only an END)", id, rc.Reason)
		}
		if rc.Reason != formatv1.RegionChange_REASON_BOOTSTRAP && len(rc.Predecessors) == 0 {
			return inc, fmt.Errorf("start of region %d (%s) names no predecessor", id, rc.Reason)
		}
		r.leader[id] = inc
	case formatv1.RegionChange_KIND_END:
		if rc.Reason == formatv1.RegionChange_REASON_TAKEOVER {
			return inc, r.checkTakeoverEnd(rc, inc)
		}
		cur, ok := r.leader[id]
		if !ok {
			return inc, fmt.Errorf("end of region %d, which the store does not lead", id)
		}
		if cur.Term != inc.Term || cur.Region.GetRegionEpoch().GetVersion() != inc.Region.GetRegionEpoch().GetVersion() {
			return inc, fmt.Errorf("end of region %d version %d term %d, but the store leads version %d term %d",
				id, inc.Region.GetRegionEpoch().GetVersion(), inc.Term, cur.Region.GetRegionEpoch().GetVersion(), cur.Term)
		}
		if rc.ResolvedTs > r.header.MaxTs {
			return inc, fmt.Errorf("end of region %d with resolved ts %d above the file's max_ts %d", id, rc.ResolvedTs, r.header.MaxTs)
		}
		delete(r.leader, id)
	default:
		return inc, fmt.Errorf("unknown region change kind %d", rc.Kind)
	}
	return inc, nil
}

// checkTakeoverEnd applies the rules of a takeover END: it names the
// crashed leader's store, and an incarnation this store does not lead (it
// would end that one with a plain END).
func (r *Reader) checkTakeoverEnd(rc *formatv1.RegionChange, inc Incarnation) error {
	id := inc.Region.Id
	if rc.Takeover.GetStoreId() == 0 {
		return fmt.Errorf("takeover end of region %d version %d term %d without the crashed leader's store", id, inc.Region.GetRegionEpoch().GetVersion(), inc.Term)
	}
	if cur, ok := r.leader[id]; ok && cur.Term == inc.Term && cur.Region.GetRegionEpoch().GetVersion() == inc.Region.GetRegionEpoch().GetVersion() {
		return fmt.Errorf("takeover end of region %d version %d term %d, which the store leads itself", id, inc.Region.GetRegionEpoch().GetVersion(), inc.Term)
	}
	if rc.ResolvedTs > r.header.MaxTs {
		return fmt.Errorf("takeover end of region %d with resolved ts %d above the file's max_ts %d", id, rc.ResolvedTs, r.header.MaxTs)
	}
	return nil
}

// ErrNameMismatch is matched (errors.Is) by CheckName's errors.
var ErrNameMismatch = errors.New("store file header does not match its object key")

// CheckName verifies that the object key a file was read from agrees with
// its header, so a file copied to the wrong place is refused.
func CheckName(key string, h *formatv1.StoreFileHeader, want layout.StoreFileName) error {
	if h.ClusterId != want.Cluster || h.TenantId != want.Tenant || h.StoreId != want.Store ||
		h.Seq != want.Seq || h.MaxTs != want.MaxTs {
		return fmt.Errorf("%s: header says cluster %d tenant %d store %d seq %d max_ts %d, the key says cluster %d tenant %d store %d seq %d max_ts %d: %w",
			key, h.ClusterId, h.TenantId, h.StoreId, h.Seq, h.MaxTs, want.Cluster, want.Tenant, want.Store, want.Seq, want.MaxTs, ErrNameMismatch)
	}
	return nil
}
