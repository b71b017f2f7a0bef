package watermark

// Counters count input the map ignored or distrusted, and garbage
// collection.
type Counters struct {
	UnknownIncarnation uint64 // Resolved or End of an incarnation not in the table
	Regressed          uint64 // resolved ts below the incarnation's latest (also re-deliveries)
	AfterEnd           uint64 // resolved ts above the final one, after the END
	DuplicateStart     uint64 // START of an incarnation already in the table
	DuplicateEnd       uint64 // END of an incarnation already ended
	Stale              uint64 // START of an unknown incarnation whose keys newer ones own
	OutsideSpan        uint64 // START whose range misses the span
	BadRange           uint64 // START with start >= end
	InvalidRef         uint64 // START of the zero region id
	BadPredecessor     uint64 // START with a zero, not-older or excessive predecessor
	VersionConflicts   uint64 // claims between different regions of one version
	Forgotten          uint64 // incarnations garbage-collected
	BootstrapWaits     uint64 // STARTs without predecessors over keys of live older ones
	ForeignEnd         uint64 // ENDs from another store than the leader's, without a takeover proof for it
	ForeignResolved    uint64 // resolved ts from another store than the leader's
	TakeoverWaits      uint64 // takeover ENDs that had to wait for the crashed leader's stream
	EarlyEnds          uint64 // ENDs read before their incarnation's START, kept for it
	EarlyDropped       uint64 // ... dropped because too many were kept
	Unled              uint64 // incarnations a store's full leader list left out (it restarted)
}

func (c *Counters) add(o Counters) {
	c.UnknownIncarnation += o.UnknownIncarnation
	c.Regressed += o.Regressed
	c.AfterEnd += o.AfterEnd
	c.DuplicateStart += o.DuplicateStart
	c.DuplicateEnd += o.DuplicateEnd
	c.Stale += o.Stale
	c.OutsideSpan += o.OutsideSpan
	c.BadRange += o.BadRange
	c.InvalidRef += o.InvalidRef
	c.BadPredecessor += o.BadPredecessor
	c.VersionConflicts += o.VersionConflicts
	c.Forgotten += o.Forgotten
	c.BootstrapWaits += o.BootstrapWaits
	c.ForeignEnd += o.ForeignEnd
	c.ForeignResolved += o.ForeignResolved
	c.TakeoverWaits += o.TakeoverWaits
	c.EarlyEnds += o.EarlyEnds
	c.EarlyDropped += o.EarlyDropped
	c.Unled += o.Unled
}

// list gives the counters in their encoding order.
func (c *Counters) list() []*uint64 {
	return []*uint64{&c.UnknownIncarnation, &c.Regressed, &c.AfterEnd, &c.DuplicateStart,
		&c.DuplicateEnd, &c.Stale, &c.OutsideSpan, &c.BadRange, &c.InvalidRef,
		&c.BadPredecessor, &c.VersionConflicts, &c.Forgotten, &c.BootstrapWaits,
		&c.ForeignEnd, &c.ForeignResolved, &c.TakeoverWaits, &c.EarlyEnds, &c.EarlyDropped, &c.Unled}
}

// v1Counters and v2Counters are how many counters encoding versions 1 and
// 2 carried.
const (
	v1Counters = 13
	v2Counters = 18
)

// Stats describes the map for metrics and debugging.
type Stats struct {
	Entries      int    // sub-ranges in the tree
	Holes        int    // ... owned by nobody (the watermark is 0 while > 0)
	Incarnations int    // in the table
	Active       int    // ... whose whole range is safe to claim
	Pending      int    // ... still waiting for predecessors
	Ended        int    // ... whose END was read
	Held         int    // takeover ENDs waiting for the crashed leader's stream
	Early        int    // ENDs kept for incarnations not started yet
	Raw          uint64 // current minimum ts over the entries (0 with a hole)
	Published    uint64 // Watermark()
	Counters
}

// Counters returns the map's counters (Stats().Counters, without the rest).
func (m *Map) Counters() Counters { return m.counters }

// Stats returns the map's statistics in O(1).
func (m *Map) Stats() Stats {
	return Stats{
		Entries:      m.tree.Len(),
		Holes:        m.holes,
		Incarnations: m.nIncs,
		Active:       m.nIncs - len(m.pending),
		Pending:      len(m.pending),
		Ended:        m.nEnded,
		Held:         len(m.held),
		Early:        len(m.early),
		Raw:          m.raw(),
		Published:    m.published,
		Counters:     m.counters,
	}
}
