package verify

import (
	"fmt"
	"slices"
)

type tableKey struct {
	tenant  uint64
	tableID int64
}

// tableState follows one table's subsequence of the pulled stream: the
// transaction now being delivered and, since async commit lets two
// transactions share a commit_ts, the ones already finished at that
// commit_ts. Earlier commit_ts need no memory: a row going back to one is
// out of order whatever its transaction.
type tableState struct {
	started  bool
	commitTs uint64
	startTs  uint64
	line     int64    // the pulled line of the current transaction's latest row
	done     []uint64 // start_ts of transactions finished at commitTs
	count    TableCount
}

// order checks that a row may come next in its table and, if so, makes it
// the table's latest. A row that breaks the order leaves the state as it
// was, so one stray row is one violation and not a cascade, and detail can
// still describe where the table was.
func (t *tableState) order(commitTs, startTs uint64, line int64) (Kind, bool) {
	switch {
	case !t.started || commitTs > t.commitTs:
		t.started, t.commitTs, t.startTs, t.line = true, commitTs, startTs, line
		t.done = t.done[:0]
	case commitTs < t.commitTs:
		return OutOfOrder, false
	case startTs == t.startTs:
		t.line = line
	case slices.Contains(t.done, startTs):
		return SplitTxn, false
	default:
		t.done = append(t.done, t.startTs)
		t.startTs, t.line = startTs, line
	}
	return 0, true
}

// detail explains a violation order just returned.
func (t *tableState) detail(k Kind) string {
	if k == OutOfOrder {
		return fmt.Sprintf("commit_ts goes back: the table was already at commit_ts %d (pulled line %d)",
			t.commitTs, t.line)
	}
	return fmt.Sprintf("its transaction resumes after the table moved on to the transaction "+
		"with start_ts %d (pulled line %d)", t.startTs, t.line)
}
