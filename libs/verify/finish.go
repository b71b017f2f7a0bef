package verify

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// finish runs the checks that need the whole stream: completeness up to the
// last resolved ts and liveness up to the truth's end, then assembles the
// report.
func (c *checker) finish() {
	rep := c.rep
	var earliest []missingRow
	for k, id := range c.idx.ids {
		e := c.idx.rows.at(id)
		if !rep.HasResolved || k.commitTs > rep.LastResolved {
			// Not owed yet: the stream never promised it.
			if e.pulledLine != 0 && !e.bad {
				rep.Ahead++
				c.table(k.tenant, e.tableID).count.Ahead++
			}
			continue
		}
		rep.TruthOwed++
		t := c.table(k.tenant, e.tableID)
		t.count.Truth++
		switch {
		case e.pulledLine == 0:
			c.viol[Missing].Count++
			earliest = keepEarliest(earliest, missingRow{k, *e}, c.opts.Examples)
		case !e.bad:
			rep.Matched++
			t.count.Matched++
		}
	}
	for _, m := range earliest {
		c.viol[Missing].Examples = append(c.viol[Missing].Examples, Example{
			TruthLine: int64(m.e.truthLine), Tenant: m.k.tenant, TableID: m.e.tableID,
			Key: bytes.Clone(c.idx.arena.get(m.e.keyRef)), CommitTs: m.k.commitTs, StartTs: m.e.startTs,
			Detail: fmt.Sprintf("not in the pulled stream, though resolved %d (pulled line %d) covers it",
				rep.LastResolved, rep.LastResolvedLine),
		})
	}
	if !c.opts.Partial && rep.Short() {
		c.add(Incomplete, Example{PulledLine: rep.LastResolvedLine}, func() string { return c.shortfall() })
	}

	for _, t := range c.tables {
		rep.Tables = append(rep.Tables, t.count)
	}
	slices.SortFunc(rep.Tables, func(a, b TableCount) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.TableID, b.TableID))
	})
	for _, v := range c.viol {
		if v.Count > 0 {
			rep.Violations = append(rep.Violations, v)
		}
	}
}

// shortfall describes a stream that stopped before the truth's end.
func (c *checker) shortfall() string {
	rep := c.rep
	unchecked := rep.TruthInFilter - rep.TruthOwed
	if !rep.HasResolved {
		return fmt.Sprintf("incomplete: the stream has no resolved event, truth end %d; %d truth rows unchecked",
			rep.TruthEnd, unchecked)
	}
	return fmt.Sprintf("incomplete: resolved %d < truth end %d; %d truth rows above it unchecked",
		rep.LastResolved, rep.TruthEnd, unchecked)
}

type missingRow struct {
	k rowKey
	e truthRow
}

func (m missingRow) before(o missingRow) bool {
	if m.k.commitTs != o.k.commitTs {
		return m.k.commitTs < o.k.commitTs
	}
	return m.e.truthLine < o.e.truthLine
}

// keepEarliest keeps the n earliest missing rows (by commit_ts, then truth
// line): map order is random, and the earliest gap is where to start looking.
func keepEarliest(s []missingRow, m missingRow, n int) []missingRow {
	if len(s) == n && !m.before(s[n-1]) {
		return s
	}
	i, _ := slices.BinarySearchFunc(s, m, func(a, b missingRow) int {
		if a.before(b) {
			return -1
		}
		if b.before(a) {
			return 1
		}
		return 0
	})
	s = slices.Insert(s, i, m)
	if len(s) > n {
		s = s[:n]
	}
	return s
}
