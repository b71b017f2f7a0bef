package check

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/tidbcodec"
)

// WriteTruth writes, in `tistream verify`'s truth format, every committed
// row change of the record ranges of the given physical tables with
// commit_ts in (from, until], then the end line at until: what a pull of
// those tables from `from` owes. Schema versions are left unknown.
func (p *Pulled) WriteTruth(w io.Writer, tenant uint64, tables map[int64]bool, from, until uint64) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	for _, r := range p.rows {
		if r.commitTs <= from || r.commitTs > until {
			continue
		}
		id, _, err := tidbcodec.DecodeRecordKeyHandle([]byte(r.key))
		if err != nil || !tables[id] {
			continue
		}
		op, value := "put", r.value
		if r.del {
			op, value = "delete", ""
		}
		fmt.Fprintf(bw, `{"type":"row","tenant":%d,"table_id":%d,"commit_ts":%d,"start_ts":%d,"op":"%s","key":"%s","value":"%s"}`+"\n",
			tenant, id, r.commitTs, r.startTs, op, hex.EncodeToString([]byte(r.key)), value)
		n++
	}
	fmt.Fprintf(bw, `{"type":"end","resolved_ts":%d}`+"\n", until)
	return n, bw.Flush()
}
