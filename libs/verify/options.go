package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultExamples is how many examples of each violation kind a Report keeps.
const DefaultExamples = 5

// Options says which part of the truth the pull was asked for.
type Options struct {
	// Tenant, when set, is the one tenant the pull covers.
	Tenant *uint64
	// Tables are the table ids the pull covers; empty means every table.
	Tables []int64
	// From is the pull's start ts: rows with commit_ts >= From are owed.
	From uint64
	// Partial accepts a stream that stops before the truth's end resolved
	// ts: completeness is then owed only up to its last resolved ts and the
	// shortfall is noted in the summary instead of being a violation.
	Partial bool
	// Examples is how many examples to keep per violation kind
	// (DefaultExamples when 0).
	Examples int
	// TruthName and PulledName name the inputs in messages ("truth" and
	// "pulled" when empty).
	TruthName, PulledName string
}

func (o Options) withDefaults() Options {
	if o.Examples <= 0 {
		o.Examples = DefaultExamples
	}
	if o.TruthName == "" {
		o.TruthName = "truth"
	}
	if o.PulledName == "" {
		o.PulledName = "pulled"
	}
	return o
}

// scope decides which rows a pull with these options covers.
type scope struct {
	tenant    uint64
	anyTenant bool
	tables    map[int64]struct{} // nil: every table
	from      uint64
}

func newScope(o Options) scope {
	s := scope{anyTenant: o.Tenant == nil, from: o.From}
	if o.Tenant != nil {
		s.tenant = *o.Tenant
	}
	if len(o.Tables) > 0 {
		s.tables = make(map[int64]struct{}, len(o.Tables))
		for _, t := range o.Tables {
			s.tables[t] = struct{}{}
		}
	}
	return s
}

// outside returns why a row is not covered, or "" when it is.
func (s scope) outside(tenant uint64, table int64, commitTs uint64) string {
	if !s.anyTenant && tenant != s.tenant {
		return fmt.Sprintf("tenant %d, but the pull is for tenant %d", tenant, s.tenant)
	}
	if s.tables != nil {
		if _, ok := s.tables[table]; !ok {
			return fmt.Sprintf("table %d is not among the pulled tables %s", table, s.tableList())
		}
	}
	if commitTs < s.from {
		return fmt.Sprintf("commit_ts below the pull's start ts %d", s.from)
	}
	return ""
}

// covers is outside without the message, for the per-row hot path.
func (s scope) covers(tenant uint64, table int64, commitTs uint64) bool {
	if !s.anyTenant && tenant != s.tenant {
		return false
	}
	if s.tables != nil {
		if _, ok := s.tables[table]; !ok {
			return false
		}
	}
	return commitTs >= s.from
}

func (s scope) tableList() string {
	ids := make([]int64, 0, len(s.tables))
	for t := range s.tables {
		ids = append(ids, t)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, t := range ids {
		parts[i] = strconv.FormatInt(t, 10)
	}
	return strings.Join(parts, ",")
}

// String describes the scope for the summary.
func (s scope) String() string {
	var parts []string
	if s.anyTenant {
		parts = append(parts, "all tenants")
	} else {
		parts = append(parts, fmt.Sprintf("tenant %d", s.tenant))
	}
	if s.tables == nil {
		parts = append(parts, "all tables")
	} else {
		parts = append(parts, "tables "+s.tableList())
	}
	if s.from > 0 {
		parts = append(parts, fmt.Sprintf("commit_ts >= %d", s.from))
	}
	return strings.Join(parts, ", ")
}
