package sorter

import "fmt"

// CausePendingCommit: a commit waits for its prewrite at or below the
// watermark map's watermark, so the range cannot flush past it. The other
// causes are the watermark map's (watermark.Cause).
const CausePendingCommit = "pending-commit"

// Blocker says what holds a range's flush target where it is: for the
// stalled-watermark alarm (an operator must never be left with a range that
// stopped moving and no reason).
type Blocker struct {
	Cause  string // CausePendingCommit or a watermark.Cause (libs/watermark); stable, a metric label
	Ts     uint64 // the target it holds
	Detail string
}

func (b Blocker) String() string { return fmt.Sprintf("%s at ts %d: %s", b.Cause, b.Ts, b.Detail) }

// Blocker explains the range's current target. It costs O(pending commits +
// watermark entries): call it when the watermark has stopped moving, not
// per batch.
func (r *Range) Blocker() Blocker {
	wm := r.wm.Watermark()
	if p := r.match.MinPendingCommit(); p != 0 && p <= wm {
		var key []byte
		var start uint64
		r.match.PendingCommits(func(k []byte, s, c uint64) bool {
			if c == p {
				key, start = k, s
				return false
			}
			return true
		})
		return Blocker{Cause: CausePendingCommit, Ts: p - 1, Detail: fmt.Sprintf(
			"the commit of key %x (start_ts %d, commit_ts %d) waits for its prewrite, which no store stream has delivered; the watermark map alone would allow %d",
			key, start, p, wm)}
	}
	b := r.wm.Diagnose()
	return Blocker{Cause: string(b.Cause), Ts: b.Ts, Detail: b.String()}
}
