package verify

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/truth"
)

// A generated upstream history: transactions over a few tables, written to a
// truth file (shuffled) and to the clean pulled stream a correct pull from 0
// would print (transactions in commit order, each table's rows of a
// transaction together, resolved events between transactions). Tests mutate
// the pulled lines to plant exactly one violation.

const (
	genTenant = 7
	baseTs    = 440_000_000_000_000_000 // above 2^53, like real TSO timestamps
	// Lines a checker skips: a DDL in the truth, an unknown type in the pull.
	ddlLine   = `{"type":"ddl","tenant":7,"commit_ts":440000000000000001,"db_id":2,"table_id":101,"action":"add_column","schema_version":3}`
	otherLine = `{"type":"checkpoint","ts":5,"note":{"x":[1,"y"]}}`
)

// pline is one pulled line: a row, a resolved ts, or raw text.
type pline struct {
	row      *truth.Row
	resolved uint64
	raw      string
}

type history struct {
	truthRows []truth.Row // in truth file order
	end       uint64
	pulled    []pline
}

func recordKey(table int64, handle uint64) []byte {
	k := []byte{'t'}
	k = binary.BigEndian.AppendUint64(k, uint64(table)^1<<63)
	k = append(k, '_', 'r')
	return binary.BigEndian.AppendUint64(k, handle^1<<63)
}

// generate builds a history of n transactions over tables. Every eighth
// transaction shares the previous one's commit_ts and table (async commit
// allows that), so split transactions can be planted.
func generate(seed uint64, tables []int64, n int) *history {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	h := &history{}
	commitTs, startTs := uint64(baseTs), uint64(0)
	var prevTables []int64
	for i := range n {
		shared := i%8 == 7
		txTables := prevTables
		prevCommit := commitTs
		if shared {
			startTs-- // another transaction, committed at the same ts
		} else {
			commitTs += 1 + rng.Uint64N(50)
			startTs = commitTs - 100 - rng.Uint64N(100)
			txTables = []int64{tables[rng.IntN(len(tables))]}
			if rng.IntN(3) == 0 {
				if other := tables[rng.IntN(len(tables))]; other != txTables[0] {
					txTables = append(txTables, other)
				}
			}
		}
		if !shared && i > 0 && rng.IntN(3) == 0 {
			h.pulled = append(h.pulled, pline{resolved: commitTs - 1 - rng.Uint64N(commitTs-prevCommit)})
		}
		for _, t := range txTables {
			// Handles of a shared-ts transaction come from their own range:
			// two transactions never commit the same key at the same ts.
			handle0 := uint64(i%8) * 1000
			nrows := 2 + rng.IntN(3)
			for j := range nrows {
				r := truth.Row{Tenant: genTenant, TableID: t, CommitTs: commitTs, StartTs: startTs,
					Op: truth.OpPut, Key: recordKey(t, handle0+uint64(j)*10+rng.Uint64N(10)),
					SchemaVersion: 3}
				if rng.IntN(10) == 0 {
					r.Op = truth.OpDelete
				} else {
					r.Value = make([]byte, 5+rng.IntN(30))
					for k := range r.Value {
						r.Value[k] = byte(rng.Uint32())
					}
				}
				h.truthRows = append(h.truthRows, r)
				c := r.Clone()
				h.pulled = append(h.pulled, pline{row: &c})
			}
		}
		prevTables = txTables
	}
	h.end = commitTs + 5
	h.pulled = append(h.pulled, pline{raw: otherLine}, pline{resolved: h.end})
	// Commits above the end are in the truth but not owed to anyone yet.
	for j := range 3 {
		h.truthRows = append(h.truthRows, truth.Row{Tenant: genTenant, TableID: tables[0], CommitTs: h.end + 10,
			StartTs: h.end + 1, Op: truth.OpPut, Key: recordKey(tables[0], uint64(j)), Value: []byte{1}})
	}
	rng.Shuffle(len(h.truthRows), func(i, j int) { h.truthRows[i], h.truthRows[j] = h.truthRows[j], h.truthRows[i] })
	return h
}

// truthFile renders the truth: rows, one ddl line, then the end line.
func (h *history) truthFile(t testing.TB) []byte {
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	for i, r := range h.truthRows {
		require.NoError(t, w.WriteRow(r))
		if i == len(h.truthRows)/2 {
			require.NoError(t, w.Flush())
			buf.WriteString(ddlLine + "\n")
		}
	}
	require.NoError(t, w.WriteEnd(truth.End{ResolvedTs: h.end}))
	require.NoError(t, w.Flush())
	return buf.Bytes()
}

// truthLine is the truth file line of the row with this key and commit_ts.
func (h *history) truthLine(r *truth.Row) int64 {
	for i := range h.truthRows {
		if bytes.Equal(h.truthRows[i].Key, r.Key) && h.truthRows[i].CommitTs == r.CommitTs {
			if i > len(h.truthRows)/2 {
				return int64(i + 2) // after the ddl line
			}
			return int64(i + 1)
		}
	}
	return 0
}

func renderPulled(t testing.TB, lines []pline) []byte {
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	for _, l := range lines {
		switch {
		case l.row != nil:
			require.NoError(t, w.WriteRow(*l.row))
		case l.raw != "":
			require.NoError(t, w.Flush())
			buf.WriteString(l.raw + "\n")
		default:
			require.NoError(t, w.WriteResolved(truth.Resolved{Ts: l.resolved}))
		}
	}
	require.NoError(t, w.Flush())
	return buf.Bytes()
}

func check(t testing.TB, h *history, pulled []pline, opts Options) *Report {
	t.Helper()
	rep, err := Check(bytes.NewReader(h.truthFile(t)), bytes.NewReader(renderPulled(t, pulled)), opts)
	require.NoError(t, err)
	return rep
}

// clonePulled copies the pulled lines deeply enough to mutate rows.
func clonePulled(p []pline) []pline {
	out := make([]pline, len(p))
	for i, l := range p {
		out[i] = l
		if l.row != nil {
			c := l.row.Clone()
			out[i].row = &c
		}
	}
	return out
}

func sameTxn(a, b *truth.Row) bool {
	return a.TableID == b.TableID && a.CommitTs == b.CommitTs && a.StartTs == b.StartTs
}
