package verify

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/truth"
)

// TestFilterOnMultiTableStream checks --table and --from against a truth of
// several tables: a pull of one table from a later ts passes with exactly its
// rows owed, and the same stream fails when the filter is dropped.
func TestFilterOnMultiTableStream(t *testing.T) {
	h := generate(4, genTables, 400)
	from := uint64(baseTs + 2000)
	in := func(r *truth.Row) bool { return r.TableID == 102 && r.CommitTs >= from }
	p := filterRows(clonePulled(h.pulled), in)
	var want int64
	for i := range h.truthRows {
		if r := &h.truthRows[i]; in(r) && r.CommitTs <= h.end {
			want++
		}
	}
	require.Positive(t, want)

	rep := check(t, h, p, Options{Tables: []int64{102}, From: from, Tenant: new(uint64(genTenant))})
	require.True(t, rep.OK(), "%v", rep.Violations)
	require.Equal(t, want, rep.TruthOwed)
	require.Equal(t, want, rep.PulledRows)
	require.Equal(t, want, rep.Matched)
	require.Len(t, rep.Tables, 1)
	require.Equal(t, int64(102), rep.Tables[0].TableID)

	rep = check(t, h, p, Options{Tables: []int64{102}})
	require.Equal(t, []Kind{Missing}, kinds(rep), "rows below --from are owed without it")
	rep = check(t, h, p, Options{From: from})
	require.Equal(t, []Kind{Missing}, kinds(rep), "other tables are owed without --table")
	for _, ex := range rep.Violation(Missing).Examples {
		require.NotEqual(t, int64(102), ex.TableID)
	}

	// The whole multi-table stream against a two-table filter: every row of
	// the third table is out of scope, and nothing else is wrong.
	rep = check(t, h, h.pulled, Options{Tables: []int64{101, 103}})
	require.Equal(t, []Kind{OutOfScope}, kinds(rep))
	var of102 int64
	for _, l := range h.pulled {
		if l.row != nil && l.row.TableID == 102 {
			of102++
		}
	}
	require.Equal(t, of102, rep.Count(OutOfScope))
}

func TestNoResolvedMeansNothingOwedButIncomplete(t *testing.T) {
	h := generate(5, genTables, 50)
	p := slices.DeleteFunc(clonePulled(h.pulled), func(l pline) bool { return l.row == nil && l.raw == "" })
	rep := check(t, h, p, Options{})
	require.Equal(t, []Kind{Incomplete}, kinds(rep))
	require.Zero(t, rep.TruthOwed)
	require.Contains(t, rep.Violation(Incomplete).Examples[0].Detail, "no resolved event")
}

func TestMissingExamplesAreTheEarliest(t *testing.T) {
	h := generate(6, genTables, 300)
	var kept []pline
	var dropped []*truth.Row
	for i, l := range h.pulled {
		if l.row != nil && i%3 == 0 {
			dropped = append(dropped, l.row)
			continue
		}
		kept = append(kept, l)
	}
	rep := check(t, h, kept, Options{Examples: 3})
	require.Equal(t, []Kind{Missing}, kinds(rep))
	v := rep.Violation(Missing)
	require.Equal(t, int64(len(dropped)), v.Count)
	require.Len(t, v.Examples, 3)
	// dropped is in stream order, i.e. by commit_ts; ties go by truth line.
	slices.SortStableFunc(dropped, func(a, b *truth.Row) int {
		if a.CommitTs != b.CommitTs {
			return int(a.CommitTs - b.CommitTs)
		}
		return int(h.truthLine(a) - h.truthLine(b))
	})
	for i, ex := range v.Examples {
		require.Equal(t, dropped[i].Key, ex.Key)
		require.Equal(t, h.truthLine(dropped[i]), ex.TruthLine)
	}
}

// TestReportFitsOneScreen runs a stream that breaks nearly every rule on
// most of its lines: the summary must stay short and still count them all.
func TestReportFitsOneScreen(t *testing.T) {
	h := generate(7, genTables, 2000)
	p := clonePulled(h.pulled)
	slices.Reverse(p) // out of order, after resolved, resolved regressed
	p = append(p, clonePulled(h.pulled)...)
	for _, l := range p[:len(p)/4] {
		if l.row != nil {
			l.row.Key[len(l.row.Key)-1] ^= 0xff // phantoms
			l.row.SchemaVersion = 9
		}
	}
	rep := check(t, h, p, Options{Tables: []int64{101, 102}})
	for _, k := range []Kind{Phantom, Duplicate, OutOfOrder, AfterResolved, ResolvedRegressed, OutOfScope} {
		require.Greater(t, rep.Count(k), int64(100), k.String())
		require.Len(t, rep.Violation(k).Examples, DefaultExamples)
	}
	var out strings.Builder
	require.NoError(t, rep.Print(&out))
	lines := strings.Count(out.String(), "\n")
	require.LessOrEqual(t, lines, 30, out.String())
	require.Contains(t, out.String(), "(first 5 shown)")
	t.Log("\n" + out.String())
}

func TestInputErrors(t *testing.T) {
	h := generate(8, genTables, 20)
	good := h.truthFile(t)
	lines := strings.SplitAfter(strings.TrimSuffix(string(good), "\n"), "\n")
	pulled := renderPulled(t, h.pulled)
	for _, tc := range []struct {
		name, truth, pulled, err string
	}{
		{"truth without end", strings.Join(lines[:len(lines)-1], ""), string(pulled),
			`t.jsonl: no end line: a truth file ends with {"type":"end","resolved_ts":N} (truncated?)`},
		{"row after end", string(good) + lines[0], string(pulled),
			"t.jsonl:" + strconv.Itoa(len(lines)+1) + ": a line after the end line"},
		{"duplicate truth row", lines[0] + string(good), string(pulled),
			"t.jsonl:" + strconv.Itoa(2) + ": tenant 7 key "},
		{"malformed truth", string(good[:40]) + "\n", string(pulled), `t.jsonl:1: bad JSON at column 41`},
		{"malformed pulled", string(good), string(pulled) + `{"type":"resolved","ts":-1}` + "\n",
			"p.jsonl:" + strconv.Itoa(bytes.Count(pulled, []byte("\n"))+1) + `: bad "ts": negative number -1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(strings.NewReader(tc.truth), strings.NewReader(tc.pulled),
				Options{TruthName: "t.jsonl", PulledName: "p.jsonl"})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}
