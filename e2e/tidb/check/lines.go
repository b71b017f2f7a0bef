package check

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/tistream/tistream/libs/formats/storeline"
)

// ReadLines builds a pulled stream straight from the capture's store
// change lines, matching prewrites with commits by (key, start_ts) as the
// spec says (an empty PUT prewrite is a lock refresh and carries nothing):
// it checks the capture alone, without a fleet. Its resolved ts are, at
// each cut, the least latest resolved ts of the regions led then.
func ReadLines(path string) (*Pulled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type txnKey struct {
		key     string
		startTs uint64
	}
	type pw struct {
		del   bool
		value []byte
	}
	p := &Pulled{}
	pending := make(map[txnKey]pw)
	resolved := make(map[uint64]uint64) // region id -> latest resolved ts (0 until its first)
	dec := storeline.NewDecoder(f)
	for {
		l, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch l.T {
		case storeline.TypeStart:
			resolved[l.Region.ID] = 0
		case storeline.TypeEnd:
			delete(resolved, l.RegionID)
		case storeline.TypeResolved:
			for _, id := range l.Regions {
				resolved[id] = l.Ts
			}
		case storeline.TypeCut:
			var m uint64
			first := true
			for _, ts := range resolved {
				if first || ts < m {
					m, first = ts, false
				}
			}
			if m > 0 {
				p.Resolved = append(p.Resolved, m)
			}
		case storeline.TypeRows:
			for _, r := range l.Rows {
				k := txnKey{string(r.Key), r.StartTs}
				switch r.Type {
				case storeline.RowPrewrite:
					if r.Op == storeline.OpPut && len(r.Value) == 0 {
						continue // a lock refresh
					}
					if _, ok := pending[k]; !ok {
						pending[k] = pw{del: r.Op == storeline.OpDelete, value: r.Value}
					}
				case storeline.RowRollback:
					delete(pending, k)
				case storeline.RowCommit:
					w, ok := pending[k]
					if !ok {
						return nil, fmt.Errorf("%s: commit of %x at %d (start %d) without its prewrite", path, r.Key, r.CommitTs, r.StartTs)
					}
					delete(pending, k)
					p.rows = append(p.rows, pulledRow{key: k.key, startTs: r.StartTs, commitTs: r.CommitTs, del: w.del, value: hex.EncodeToString(w.value)})
				case storeline.RowCommitted:
					p.rows = append(p.rows, pulledRow{key: k.key, startTs: r.StartTs, commitTs: r.CommitTs, del: r.Op == storeline.OpDelete, value: hex.EncodeToString(r.Value)})
				}
			}
		}
	}
	sort.SliceStable(p.rows, func(i, j int) bool { return p.rows[i].commitTs < p.rows[j].commitTs })
	return p, nil
}
