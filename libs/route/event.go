package route

import (
	"github.com/pingcap/kvproto/pkg/cdcpb"
)

// Ref names a region incarnation: one leadership of one region version.
type Ref struct {
	RegionID, Version, Term uint64
}

// Kind of an Event.
type Kind uint8

const (
	KindRow Kind = iota + 1
	KindRegionStart
	KindRegionEnd
	KindResolved
	// KindLeaderResolved is a store's LeaderResolvedTs (store file format
	// version 2): every incarnation the store leads at this point has
	// resolved ts Ts, except those in Refs (the ones overlapping the range).
	KindLeaderResolved
	// KindLeaders is a store's full leader list, at the start of a format
	// version 2 file whose header carries one: Refs are the incarnations it
	// leads there that overlap the range; any other incarnation it led and
	// did not end, it no longer leads (it restarted).
	KindLeaders
)

// Event is one thing a range receives, in its store stream's order.
type Event struct {
	Kind Kind
	// Row for KindRow (a TiKV row: PREWRITE, COMMIT, ROLLBACK or COMMITTED).
	Row *cdcpb.Event_Row
	// Inc is the incarnation of a region change, or the one that wrote the row.
	Inc Ref
	// Refs are the incarnations a resolved ts is for (KindResolved): one
	// TiKV ResolvedTs record names many regions at one ts; the exceptions of
	// a KindLeaderResolved; the led incarnations of a KindLeaders.
	Refs []Ref
	// Start and End are the incarnation's raw key range (KindRegionStart);
	// End nil = unbounded.
	Start, End []byte
	Preds      []Ref
	// Ts is the resolved ts (KindResolved, KindLeaderResolved) or the final
	// resolved ts (KindRegionEnd).
	Ts uint64
	// TakeoverStore and TakeoverSeq mark a takeover END (KindRegionEnd): the
	// crashed leader's store (non-zero) and the last file of its stream
	// proven to hold the incarnation's events the END's writer did not write
	// again (store-change-file spec, "Takeover").
	TakeoverStore, TakeoverSeq uint64
}

// Position names a point in a store's stream: the file seq whose events a
// batch holds. A range that has applied a batch of (store, seq) skips any
// later delivery of the same or an earlier seq from that store, which makes
// redelivery after a dispatcher restart harmless.
type Position struct {
	Store uint64
	Seq   uint64
}

// Batch is the events of one store file for one range.
type Batch struct {
	RangeID uint64
	Pos     Position
	MaxTs   uint64 // the file's max_ts
	Events  []Event
}
