package verify

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// printLines bounds the summary: it must fit one screen however large the
// inputs and however many violations, so it shows a few tables and as many
// examples as fit (at least one per kind) and says how many more there are.
const (
	printLines  = 30
	printTables = 6
)

// Print writes a one-screen summary of the report.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	if r.OK() {
		fmt.Fprintf(&b, "verify: OK\n")
	} else {
		var n int64
		for _, v := range r.Violations {
			n += v.Count
		}
		fmt.Fprintf(&b, "verify: FAIL: %s (%s)\n", plural(n, "violation"), plural(int64(len(r.Violations)), "kind"))
	}
	fmt.Fprintf(&b, "scope:   %s\n", r.Scope)
	fmt.Fprintf(&b, "truth:   %d rows in %s, end resolved_ts %d; %d in scope, %d owed (commit_ts <= last resolved)\n",
		r.TruthRows, r.TruthName, r.TruthEnd, r.TruthInFilter, r.TruthOwed)
	resolved := "no resolved event"
	if r.HasResolved {
		resolved = fmt.Sprintf("last resolved %d (line %d)", r.LastResolved, r.LastResolvedLine)
	}
	fmt.Fprintf(&b, "pulled:  %d rows in %s, %d resolved events, %s\n", r.PulledRows, r.PulledName, r.ResolvedEvents, resolved)
	ahead := ""
	if r.Ahead > 0 {
		ahead = fmt.Sprintf(" (and %d rows above the last resolved)", r.Ahead)
	}
	fmt.Fprintf(&b, "matched: %d of %d owed rows%s; %s of other types skipped\n",
		r.Matched, r.TruthOwed, ahead, plural(r.OtherLines, "line"))
	if r.Partial && r.Short() {
		fmt.Fprintf(&b, "partial: the stream stops at resolved %d, short of the truth end %d; %d truth rows unchecked\n",
			r.LastResolved, r.TruthEnd, r.TruthInFilter-r.TruthOwed)
	}
	r.printTables(&b)
	if !r.OK() {
		r.printViolations(&b, printLines-strings.Count(b.String(), "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean reports whether the table got exactly what it was owed (plus, for a
// stream cut short, correct rows beyond its last resolved ts).
func (t TableCount) clean() bool { return t.Truth == t.Matched && t.Pulled == t.Matched+t.Ahead }

func (r *Report) printTables(b *strings.Builder) {
	if len(r.Tables) == 0 {
		return
	}
	// Tables whose counts disagree first: those are the ones to look at.
	shown := slices.Clone(r.Tables)
	slices.SortStableFunc(shown, func(a, b TableCount) int {
		switch {
		case a.clean() == b.clean():
			return 0
		case !a.clean():
			return -1
		}
		return 1
	})
	multiTenant := r.Tables[0].Tenant != r.Tables[len(r.Tables)-1].Tenant
	var differ int
	for _, t := range r.Tables {
		if !t.clean() {
			differ++
		}
	}
	fmt.Fprintf(b, "tables:  %d, %d with differences (truth owed/pulled/matched):", len(r.Tables), differ)
	for i, t := range shown {
		if i == printTables {
			fmt.Fprintf(b, ", ... %d more", len(shown)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if multiTenant {
			fmt.Fprintf(b, " %d:%d", t.Tenant, t.TableID)
		} else {
			fmt.Fprintf(b, " %d", t.TableID)
		}
		fmt.Fprintf(b, " %d/%d/%d", t.Truth, t.Pulled, t.Matched)
		if t.Ahead > 0 {
			fmt.Fprintf(b, " (+%d ahead)", t.Ahead)
		}
	}
	b.WriteByte('\n')
}

// printViolations prints each kind with its count and examples in lines
// lines: one example per kind is always shown, the rest of the room goes
// to the kinds listed first.
func (r *Report) printViolations(b *strings.Builder, lines int) {
	b.WriteString("violations:\n")
	extra := lines - 1 - 2*len(r.Violations)
	for _, v := range r.Violations {
		n := min(len(v.Examples), 1+max(0, extra))
		extra -= n - 1
		if int64(n) < v.Count {
			fmt.Fprintf(b, "  %s: %d (first %d shown)\n", v.Kind, v.Count, n)
		} else {
			fmt.Fprintf(b, "  %s: %d\n", v.Kind, v.Count)
		}
		for _, ex := range v.Examples[:n] {
			fmt.Fprintf(b, "    %s\n", ex)
		}
	}
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
