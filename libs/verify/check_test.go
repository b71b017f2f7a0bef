package verify

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/truth"
)

var genTables = []int64{101, 102, 103}

func kinds(r *Report) []Kind {
	var ks []Kind
	for _, v := range r.Violations {
		ks = append(ks, v.Kind)
	}
	return ks
}

func TestCleanStreamPasses(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := generate(seed, genTables, 300)
			for _, stripSchema := range []bool{false, true} {
				p := clonePulled(h.pulled)
				if stripSchema { // schema_version is checked only when both sides carry it
					for _, l := range p {
						if l.row != nil {
							l.row.SchemaVersion = 0
						}
					}
				}
				rep := check(t, h, p, Options{})
				require.True(t, rep.OK(), "%v", rep.Violations)
				owed := int64(len(h.truthRows) - 3) // three commits above the end
				require.Equal(t, int64(len(h.truthRows)), rep.TruthRows)
				require.Equal(t, int64(len(h.truthRows)), rep.TruthInFilter)
				require.Equal(t, owed, rep.TruthOwed)
				require.Equal(t, owed, rep.PulledRows)
				require.Equal(t, owed, rep.Matched)
				require.Equal(t, h.end, rep.TruthEnd)
				require.Equal(t, h.end, rep.LastResolved)
				require.Equal(t, int64(len(p)), rep.LastResolvedLine)
				require.Equal(t, int64(2), rep.OtherLines, "a ddl line in the truth, an unknown type in the pull")
				require.Len(t, rep.Tables, len(genTables))
				for _, tc := range rep.Tables {
					require.True(t, tc.clean(), "%+v", tc)
					require.Positive(t, tc.Truth)
				}
			}
		})
	}
}

// plant mutates a clean pulled stream to hold one violation and returns the
// kind and the line the report must name: the pulled line, or the truth line
// for a missing row.
type plant func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64)

// find returns the first index i from the middle of p for which ok holds.
func find(t *testing.T, p []pline, ok func(i int) bool) int {
	for i := len(p) / 3; i < len(p)-3; i++ {
		if ok(i) {
			return i
		}
	}
	require.FailNow(t, "generated stream has no place for this plant")
	return -1
}

func isRow(p []pline, i int) bool { return p[i].row != nil }

func middleRow(t *testing.T, p []pline, ok func(*truth.Row) bool) int {
	return find(t, p, func(i int) bool { return isRow(p, i) && (ok == nil || ok(p[i].row)) })
}

func withRow(r *truth.Row, mut func(*truth.Row)) pline {
	c := r.Clone()
	mut(&c)
	return pline{row: &c}
}

func filterRows(p []pline, keep func(*truth.Row) bool) []pline {
	return slices.DeleteFunc(p, func(l pline) bool { return l.row != nil && !keep(l.row) })
}

var plants = map[string]struct {
	opts  Options
	plant plant
}{
	"dropped row": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, nil)
		line := h.truthLine(p[i].row)
		return slices.Delete(p, i, i+1), Missing, line
	}},
	"phantom key": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, nil)
		ph := withRow(p[i].row, func(r *truth.Row) { r.Key = recordKey(r.TableID, 999_999) })
		return slices.Insert(p, i+1, ph), Phantom, int64(i + 2)
	}},
	"rolled back ts": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := len(p) - 3 // the last row, before the other line and the final resolved
		ph := withRow(p[i].row, func(r *truth.Row) { r.CommitTs, r.StartTs = h.end, h.end-3 })
		return slices.Insert(p, i+1, ph), Phantom, int64(i + 2)
	}},
	"above truth end": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		ph := withRow(p[len(p)-3].row, func(r *truth.Row) { r.CommitTs, r.StartTs = h.end+20, h.end+19 })
		return append(p, ph), Phantom, int64(len(p) + 1)
	}},
	"duplicate": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, nil)
		return slices.Insert(p, i+1, withRow(p[i].row, func(*truth.Row) {})), Duplicate, int64(i + 2)
	}},
	"swapped commit ts": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := find(t, p, func(i int) bool {
			return isRow(p, i) && isRow(p, i+1) && p[i].row.TableID == p[i+1].row.TableID &&
				p[i].row.CommitTs < p[i+1].row.CommitTs
		})
		p[i], p[i+1] = p[i+1], p[i]
		return p, OutOfOrder, int64(i + 2)
	}},
	"split transaction": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := find(t, p, func(i int) bool {
			return isRow(p, i) && isRow(p, i+1) && isRow(p, i+2) && sameTxn(p[i].row, p[i+1].row) &&
				p[i+2].row.TableID == p[i].row.TableID && p[i+2].row.CommitTs == p[i].row.CommitTs &&
				p[i+2].row.StartTs != p[i].row.StartTs
		})
		p[i], p[i+1], p[i+2] = p[i+1], p[i+2], p[i] // the first row moves after the next transaction's
		return p, SplitTxn, int64(i + 3)
	}},
	"row after covering resolved": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		j := find(t, p, func(j int) bool { return !isRow(p, j) && p[j].raw == "" && isRow(p, j-1) })
		p[j-1], p[j] = p[j], p[j-1]
		return p, AfterResolved, int64(j + 1)
	}},
	"altered value": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, func(r *truth.Row) bool { return r.Op == truth.OpPut })
		p[i].row.Value[0] ^= 1
		return p, WrongContent, int64(i + 1)
	}},
	"put became delete": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, func(r *truth.Row) bool { return r.Op == truth.OpPut })
		p[i].row.Op, p[i].row.Value = truth.OpDelete, nil
		return p, WrongContent, int64(i + 1)
	}},
	"altered start_ts": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		// The last row before a resolved ends its transaction, so a new
		// start_ts there makes no split.
		i := find(t, p, func(i int) bool { return isRow(p, i) && !isRow(p, i+1) && p[i+1].raw == "" })
		p[i].row.StartTs += 7777
		return p, WrongContent, int64(i + 1)
	}},
	"stopped early": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		j := find(t, p, func(j int) bool { return !isRow(p, j) && p[j].raw == "" })
		return p[:j+1], Incomplete, int64(j + 1)
	}},
	"resolved regressed": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		j := find(t, p, func(j int) bool { return !isRow(p, j) && p[j].raw == "" })
		return slices.Insert(p, j+1, pline{resolved: p[j].resolved - 1}), ResolvedRegressed, int64(j + 2)
	}},
	"row of another table": {opts: Options{Tables: []int64{101}}, plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		stray := withRow(p[middleRow(t, p, func(r *truth.Row) bool { return r.TableID == 102 })].row, func(*truth.Row) {})
		p = filterRows(p, func(r *truth.Row) bool { return r.TableID == 101 })
		i := middleRow(t, p, nil)
		return slices.Insert(p, i+1, stray), OutOfScope, int64(i + 2)
	}},
	"row of another tenant": {opts: Options{Tenant: new(uint64(genTenant))}, plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, nil)
		return slices.Insert(p, i+1, withRow(p[i].row, func(r *truth.Row) { r.Tenant++ })), OutOfScope, int64(i + 2)
	}},
	"row below from": {opts: Options{From: baseTs + 1000}, plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		early := withRow(p[0].row, func(*truth.Row) {})
		p = filterRows(p, func(r *truth.Row) bool { return r.CommitTs >= baseTs+1000 })
		return slices.Insert(p, 0, early), OutOfScope, 1
	}},
	"wrong schema version": {plant: func(t *testing.T, h *history, p []pline) ([]pline, Kind, int64) {
		i := middleRow(t, p, nil)
		p[i].row.SchemaVersion = 4
		return p, WrongSchemaVersion, int64(i + 1)
	}},
}

func TestPlantedViolationsAreCaught(t *testing.T) {
	h := generate(1, genTables, 400)
	for name, tc := range plants {
		t.Run(name, func(t *testing.T) {
			p, kind, line := tc.plant(t, h, clonePulled(h.pulled))
			rep := check(t, h, p, tc.opts)
			require.False(t, rep.OK())
			require.Equal(t, []Kind{kind}, kinds(rep), "exactly the planted violation: %v", rep.Violations)
			v := rep.Violation(kind)
			require.Equal(t, int64(1), v.Count)
			require.Len(t, v.Examples, 1)
			ex := v.Examples[0]
			if kind == Missing {
				require.Equal(t, line, ex.TruthLine)
			} else {
				require.Equal(t, line, ex.PulledLine)
			}
			require.NotEmpty(t, ex.Detail)

			var out strings.Builder
			require.NoError(t, rep.Print(&out))
			require.Contains(t, out.String(), fmt.Sprintf("  %s: 1\n", kind))
			require.Contains(t, out.String(), fmt.Sprintf(" line %d", line))
			t.Log("\n" + out.String())
		})
	}
}

func TestPartialAcceptsAStreamThatStopsEarly(t *testing.T) {
	h := generate(2, genTables, 300)
	p := h.pulled[:find(t, h.pulled, func(j int) bool { return !isRow(h.pulled, j) && h.pulled[j].raw == "" })+1]
	rep := check(t, h, p, Options{Partial: true})
	require.True(t, rep.OK(), "%v", rep.Violations)
	require.True(t, rep.Short())
	require.Less(t, rep.TruthOwed, rep.TruthInFilter)
	require.Equal(t, rep.TruthOwed, rep.Matched)
	require.Zero(t, rep.Ahead, "cut at a resolved event: nothing beyond it")
	var out strings.Builder
	require.NoError(t, rep.Print(&out))
	require.Contains(t, out.String(), "partial: the stream stops at resolved")

	// Rows beyond the last resolved ts are fine, and counted as ahead.
	rep = check(t, h, h.pulled[:len(p)+3], Options{Partial: true})
	require.True(t, rep.OK(), "%v", rep.Violations)
	require.Positive(t, rep.Ahead)
	require.Equal(t, rep.PulledRows, rep.Matched+rep.Ahead)
	for _, tc := range rep.Tables {
		require.True(t, tc.clean(), "%+v", tc)
	}

	// Partial still requires everything up to the last resolved ts.
	i := middleRow(t, p[:len(p)/2], nil)
	rep = check(t, h, slices.Delete(clonePulled(p), i, i+1), Options{Partial: true})
	require.Equal(t, []Kind{Missing}, kinds(rep))
}
