package verify

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Kind is one way a pulled stream can break the contract.
type Kind uint8

// The violation kinds, in the order a Report lists them.
const (
	// Missing: a truth row the stream's resolved ts covers never came.
	Missing Kind = iota
	// Incomplete: the stream stopped before the truth's end resolved ts.
	Incomplete
	// Phantom: a pulled row the truth does not have.
	Phantom
	// WrongContent: a pulled row whose (tenant, key, commit_ts) is in the
	// truth but whose table, start_ts, op or value differs.
	WrongContent
	// WrongSchemaVersion: both sides carry schema_version and they differ.
	WrongSchemaVersion
	// Duplicate: a (tenant, key, commit_ts) pulled a second time.
	Duplicate
	// OutOfOrder: a row's commit_ts is below an earlier row's of its table.
	OutOfOrder
	// SplitTxn: a transaction's rows resumed after another transaction of
	// the same table (and commit_ts) had started.
	SplitTxn
	// AfterResolved: a row at or below a resolved ts that came before it.
	AfterResolved
	// ResolvedRegressed: a resolved ts below an earlier one.
	ResolvedRegressed
	// OutOfScope: a row of another tenant or table, or below the start ts.
	OutOfScope
	numKinds
)

var kindNames = [numKinds]string{
	"missing", "incomplete", "phantom", "wrong content", "wrong schema version", "duplicate",
	"out of order", "split transaction", "after resolved", "resolved regressed", "out of scope",
}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Example is one violation, precise enough to find it in the files.
type Example struct {
	PulledLine int64 // the pulled line at fault; 0 for a missing row
	TruthLine  int64 // the truth line involved; 0 if none
	// The row, when the violation is about one (Key is nil otherwise).
	Tenant            uint64
	TableID           int64
	Key               []byte
	CommitTs, StartTs uint64
	Detail            string // what was wrong and what was expected
}

// maxKeyHex is how much of a key's hex an example prints before eliding the
// middle: TiDB record keys (19 bytes) fit whole, and the elided form keeps
// the table prefix and the handle at the end.
const maxKeyHex = 48

func (e Example) String() string {
	var b strings.Builder
	switch {
	case e.PulledLine > 0:
		fmt.Fprintf(&b, "pulled line %d", e.PulledLine)
	case e.TruthLine > 0:
		fmt.Fprintf(&b, "truth line %d", e.TruthLine)
	default:
		b.WriteString("end of stream")
	}
	if e.Key != nil {
		k := hex.EncodeToString(e.Key)
		if len(k) > maxKeyHex {
			k = k[:maxKeyHex/2-2] + "..." + k[len(k)-maxKeyHex/2+2:]
		}
		fmt.Fprintf(&b, ": tenant %d table %d key %s commit_ts %d start_ts %d",
			e.Tenant, e.TableID, k, e.CommitTs, e.StartTs)
	}
	b.WriteString(": ")
	b.WriteString(e.Detail)
	return b.String()
}

// Violation is every occurrence of one kind: the count and the first few.
type Violation struct {
	Kind     Kind
	Count    int64
	Examples []Example
}

// TableCount is what one table contributed.
type TableCount struct {
	Tenant  uint64
	TableID int64
	Truth   int64 // truth rows owed
	Pulled  int64 // pulled rows (in scope)
	Matched int64 // pulled rows equal to an owed truth row, counted once
	Ahead   int64 // pulled rows equal to a truth row above the last resolved ts
}

// Report is the outcome of Check.
type Report struct {
	TruthName, PulledName string
	Scope                 string // the Options' filter, described
	Partial               bool

	TruthRows     int64  // row lines in the truth file
	TruthInFilter int64  // of those, rows in the tenant/table/from filter
	TruthOwed     int64  // of those, rows at or below LastResolved
	TruthEnd      uint64 // the truth's end resolved_ts

	PulledRows     int64
	ResolvedEvents int64
	HasResolved    bool
	// LastResolved is the highest resolved ts the stream reached (a
	// regression is reported, not followed) and LastResolvedLine its line.
	LastResolved     uint64
	LastResolvedLine int64
	Matched          int64 // owed truth rows pulled once with the right content
	// Ahead counts truth rows above LastResolved that were pulled (with the
	// right content) although not owed yet: normal for a stream cut short.
	Ahead      int64
	OtherLines int64 // lines of other types (e.g. ddl), both inputs, skipped

	Tables     []TableCount // by tenant, then table id
	Violations []Violation  // kinds that occurred, in Kind order
}

// OK reports whether the stream kept the contract.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations of kind k were found.
func (r *Report) Count(k Kind) int64 {
	if v := r.Violation(k); v != nil {
		return v.Count
	}
	return 0
}

// Violation returns the violations of kind k, or nil if there were none.
func (r *Report) Violation(k Kind) *Violation {
	for i := range r.Violations {
		if r.Violations[i].Kind == k {
			return &r.Violations[i]
		}
	}
	return nil
}

// Short reports whether the stream stopped before the truth's end.
func (r *Report) Short() bool { return r.LastResolved < r.TruthEnd }
