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

// Record is one decoded record after the header: exactly one of Event,
// RegionChange and LeaderResolved is set. An Event's keys and values may
// point into the file's bytes (or a block the reader decompressed for
// them): they stay valid as long as they are kept, and must not be
// changed.
type Record struct {
	Event        *cdcpb.ChangeDataEvent
	RegionChange *formatv1.RegionChange
	// Incarnation is RegionChange's incarnation, decoded.
	Incarnation Incarnation
	// LeaderResolved is a format version 2 LeaderResolvedTs: every region
	// the store leads at this point, except those listed, has resolved ts
	// LeaderResolved.Ts.
	LeaderResolved *formatv1.LeaderResolvedTs
}

// Reader decodes and checks one store change file held in memory, as the
// next file of its Stream.
type Reader struct {
	c       *container.Reader
	header  formatv1.StoreFileHeader
	s       *Stream
	rec     formatv1.StoreRecord
	fresh   bool
	dropped []Incarnation
	seen    map[uint64]struct{} // scratch: except lists
}

// Open reads one file on its own: a Stream of its own without a base
// loader, so a delta header (format version 2) fails with ErrNeedBase.
func Open(name string, data []byte) (*Reader, error) {
	s := NewStream(nil)
	s.arena = nil // one file: its records' arrays sized to them, nothing to recycle
	return s.Open(name, data)
}

// Header is the file's header.
func (r *Reader) Header() *formatv1.StoreFileHeader { return &r.header }

// Fresh reports whether the stream started afresh at this file (the first
// file read, or one not following the last file read whole): the leader
// list was read in full, from this header or from its base's.
func (r *Reader) Fresh() bool { return r.fresh }

// FullList reports whether this file's header carries the full leader list
// in format version 2 (the first file of a stream or after a restart, and
// periodically).
func (r *Reader) FullList() bool {
	return r.header.FormatVersion >= FormatVersion && r.header.LeaderBaseSeq == 0
}

// Dropped lists, ascending by region id, the incarnations the stream led at
// the end of the previous file that this file's full header does not list:
// the store restarted and lost them without an END (never for a fresh
// stream).
func (r *Reader) Dropped() []Incarnation { return r.dropped }

// Leaders is the number of incarnations the store leads at this point.
func (r *Reader) Leaders() int { return len(r.s.set.led) }

// EachLeader calls fn for every incarnation the store leads at this point,
// in no particular order. The incarnations have no peers and no conf_ver.
func (r *Reader) EachLeader(fn func(Incarnation)) {
	for _, l := range r.s.set.led {
		fn(l.incarnation())
	}
}

// Leader returns the incarnation of region id the store leads at the current
// point of the stream (without peers and conf_ver).
func (r *Reader) Leader(regionID uint64) (Incarnation, bool) {
	l, ok := r.s.set.get(regionID)
	if !ok {
		return Incarnation{}, false
	}
	return l.incarnation(), true
}

// LeaderKeys is Leader without building an Incarnation (no allocation):
// the led incarnation's ref and its region's encoded start and end keys,
// which the caller must not change; they stay what they are while the
// incarnation is led.
func (r *Reader) LeaderKeys(regionID uint64) (ref Ref, start, end []byte, ok bool) {
	l, ok := r.s.set.get(regionID)
	if !ok {
		return Ref{}, nil, nil, false
	}
	start, end = l.bounds()
	return l.ref, start, end, true
}

// Next returns the next record, or io.EOF after the last one (the file's
// trailer has then been checked, and the stream may go on with the next
// file).
func (r *Reader) Next() (Record, error) {
	rec, err := r.next()
	switch {
	case err == io.EOF:
		r.s.at, r.s.maxTs = r.header.Seq, r.header.MaxTs
	case err != nil:
		r.s.Reset()
	}
	return rec, err
}

func (r *Reader) next() (Record, error) {
	raw, err := r.c.Next()
	if err != nil {
		return Record{}, err
	}
	if b, ok := changeDataEventOnly(raw); ok {
		if ev, ok := fastChangeDataEvent(b, r.s.arena); ok {
			if err := r.checkEvent(ev); err != nil {
				return Record{}, r.c.Corrupt(err, "bad change data event")
			}
			return Record{Event: ev}, nil
		}
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
	case *formatv1.StoreRecord_LeaderResolvedTs:
		if err := r.checkLeaderResolved(v.LeaderResolvedTs); err != nil {
			return Record{}, r.c.Corrupt(err, "bad leader resolved ts")
		}
		return Record{LeaderResolved: v.LeaderResolvedTs}, nil
	default:
		return Record{}, r.c.Corrupt(nil, "StoreRecord has no record set (unknown kind from a newer producer?)")
	}
}

func (r *Reader) led(regionID uint64, what string) error {
	if _, ok := r.s.set.get(regionID); !ok {
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

// checkLeaderResolved applies the rules of a LeaderResolvedTs: a version 2
// record, at or below max_ts, not below the stream's previous one, and
// excepting only regions led here, once each.
func (r *Reader) checkLeaderResolved(lr *formatv1.LeaderResolvedTs) error {
	if r.header.FormatVersion < FormatVersion {
		return fmt.Errorf("a leader resolved ts record in a format version %d file", max(1, r.header.FormatVersion))
	}
	if lr.Ts > r.header.MaxTs {
		return fmt.Errorf("leader resolved ts %d above the file's max_ts %d", lr.Ts, r.header.MaxTs)
	}
	if lr.Ts < r.s.groupTs {
		return fmt.Errorf("leader resolved ts %d below the stream's previous one, %d", lr.Ts, r.s.groupTs)
	}
	if r.seen == nil {
		r.seen = map[uint64]struct{}{}
	}
	clear(r.seen)
	for _, id := range lr.ExceptRegions {
		if err := r.led(id, "leader resolved ts exception"); err != nil {
			return err
		}
		if _, dup := r.seen[id]; dup {
			return fmt.Errorf("leader resolved ts excepts region %d twice", id)
		}
		r.seen[id] = struct{}{}
	}
	r.s.groupTs = lr.Ts
	return nil
}

func (r *Reader) applyRegionChange(rc *formatv1.RegionChange) (Incarnation, error) {
	inc, err := DecodeIncarnation(rc.Incarnation)
	if err != nil {
		return inc, err
	}
	id := inc.Region.Id
	switch rc.Kind {
	case formatv1.RegionChange_KIND_START:
		if cur, ok := r.s.set.get(id); ok {
			return inc, fmt.Errorf("start of region %d term %d while the store still leads it (version %d term %d)",
				id, inc.Term, cur.ref.Version, cur.ref.Term)
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
		r.s.set.set(id, leanOf(inc))
	case formatv1.RegionChange_KIND_END:
		if rc.Reason == formatv1.RegionChange_REASON_TAKEOVER {
			return inc, r.checkTakeoverEnd(rc, inc)
		}
		cur, ok := r.s.set.get(id)
		if !ok {
			return inc, fmt.Errorf("end of region %d, which the store does not lead", id)
		}
		if cur.ref != inc.ref() {
			return inc, fmt.Errorf("end of region %d version %d term %d, but the store leads version %d term %d",
				id, inc.Region.GetRegionEpoch().GetVersion(), inc.Term, cur.ref.Version, cur.ref.Term)
		}
		if rc.ResolvedTs > r.header.MaxTs {
			return inc, fmt.Errorf("end of region %d with resolved ts %d above the file's max_ts %d", id, rc.ResolvedTs, r.header.MaxTs)
		}
		r.s.set.remove(id)
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
	if cur, ok := r.s.set.get(id); ok && cur.ref == inc.ref() {
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
