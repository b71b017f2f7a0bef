package verify

import (
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/tistream/tistream/libs/truth"
)

// contentDiff compares a pulled row with the truth row of the same (tenant,
// key, commit_ts). It returns nil when they agree, else a function that
// describes every difference and what the truth has; the value is known
// only by its hash, so for it the truth line is what is expected.
func contentDiff(x *index, r *truth.Row, e *truthRow) func() string {
	sameTable := r.TableID == e.tableID
	sameStart := r.StartTs == e.startTs
	sameOp := (r.Op == truth.OpDelete) == e.delete
	sameValue := maphash.Bytes(x.seed, r.Value) == e.valueHash
	if sameTable && sameStart && sameOp && sameValue {
		return nil
	}
	return func() string {
		var d []string
		if !sameTable {
			d = append(d, fmt.Sprintf("want table %d", e.tableID))
		}
		if !sameStart {
			d = append(d, fmt.Sprintf("want start_ts %d", e.startTs))
		}
		if !sameOp {
			want := truth.OpPut
			if e.delete {
				want = truth.OpDelete
			}
			d = append(d, fmt.Sprintf("op %s, want %s", r.Op, want))
		}
		if !sameValue {
			d = append(d, fmt.Sprintf("value (%d bytes) differs", len(r.Value)))
		}
		return strings.Join(d, "; ") + fmt.Sprintf(" (truth line %d)", e.truthLine)
	}
}
