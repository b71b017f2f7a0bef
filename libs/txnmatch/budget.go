package txnmatch

import "sync/atomic"

// Budget is the byte limit on prewrites held in memory by all the matchers
// of a sorter process. Accounting is atomic; each matcher reacts to the
// shared total by spilling its own transactions, so no matcher ever touches
// another's state.
//
// A matcher passes its charges on in steps: it keeps what its per-event
// methods charge to itself until that reaches step bytes either way, and
// the caller settles the rest at the end of each batch of events
// (Matcher.Settle). The shared counter is one cache line that every
// worker writes; written on every prewrite and commit, it doubled the
// CPU the matcher's prewrites and drops took on two cores against one
// (docs/benchmarks.md, "One counter every worker wrote"). A matcher
// compares against the limit the settled total plus its own unsettled
// charges, so the total it sees is short by at most the unsettled charges
// of the other matchers in the middle of a batch: under step bytes each,
// and at most one matcher per worker.
type Budget struct {
	limit int64
	step  int64
	used  atomic.Int64
}

// maxStep is the largest settling step; a small budget gets a step of a
// 64th of its limit, so that the error above stays a small share of it.
const maxStep = 64 << 10

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, step: max(0, min(maxStep, limit/64))}
}

// Limit is the configured limit in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the bytes charged by all matchers and settled (see Budget).
func (b *Budget) Used() int64 { return b.used.Load() }

// lowWater is where a spill stops: an eighth below the limit, so that a
// matcher near the limit does not spill a transaction on every prewrite.
func (b *Budget) lowWater() int64 { return b.limit - b.limit/8 }
