package txnmatch

import "sync/atomic"

// Budget is the byte limit on prewrites held in memory by all the matchers
// of a sorter process. Accounting is atomic; each matcher reacts to the
// shared total by spilling its own transactions, so no matcher ever touches
// another's state.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the configured limit in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the bytes currently charged by all matchers.
func (b *Budget) Used() int64 { return b.used.Load() }

func (b *Budget) charge(n int64) int64 { return b.used.Add(n) }

// lowWater is where a spill stops: an eighth below the limit, so that a
// matcher near the limit does not spill a transaction on every prewrite.
func (b *Budget) lowWater() int64 { return b.limit - b.limit/8 }
