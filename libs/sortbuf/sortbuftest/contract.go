package sortbuftest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// RunContract runs the Store contract as subtests. newStore must return a
// fresh, empty store for each call.
func RunContract(t *testing.T, newStore func(t *testing.T) sortbuf.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, s sortbuf.Store)
	}{
		{"ScanOrder", testScanOrder},
		{"ScanUpTo", testScanUpTo},
		{"ValuesRoundTrip", testValuesRoundTrip},
		{"IdempotentAdd", testIdempotentAdd},
		{"AddReplacesSameKey", testAddReplacesSameKey},
		{"Has", testHas},
		{"DeleteUpTo", testDeleteUpTo},
		{"LateRowsIgnored", testLateRows},
		{"FloorBetweenAddAndCommit", testFloorBetweenAddAndCommit},
		{"Batch", testBatch},
		{"InvalidRows", testInvalidRows},
		{"ScanCallbackError", testScanCallbackError},
		{"ScanConsistentView", testScanConsistentView},
		{"ExtremeTimestamps", testExtremeTimestamps},
		{"RangesIsolated", testRangesIsolated},
		{"Drop", testDrop},
		{"SameBufferPerUID", testSameBuffer},
		{"Stats", testStats},
		{"RandomAgainstModel", testRandomAgainstModel},
		{"SpillRoundTrip", testSpillRoundTrip},
		{"SpillDeleteTxn", testSpillDeleteTxn},
		{"SpillForEachOrder", testSpillForEachOrder},
		{"SpillSeparateFromRows", testSpillSeparateFromRows},
		{"SpillGetReturnsCopy", testSpillGetReturnsCopy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

// row builds a put row with a value derived from its identity.
func row(commitTs, startTs uint64, key string) sortbuf.Row {
	return sortbuf.Row{
		CommitTs: commitTs, StartTs: startTs, Op: sortbuf.OpPut,
		Key: []byte(key), Value: []byte("v:" + key),
	}
}

// scanAll returns clones of every row with commit_ts <= upTo.
func scanAll(t *testing.T, b sortbuf.Buffer, upTo uint64) []sortbuf.Row {
	t.Helper()
	var out []sortbuf.Row
	require.NoError(t, b.Scan(upTo, func(r sortbuf.Row) error {
		out = append(out, r.Clone())
		return nil
	}))
	return out
}

// ids renders rows as "commit/start/key" for readable comparisons.
func ids(rows []sortbuf.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}

func id(r sortbuf.Row) string {
	return formatID(r.CommitTs, r.StartTs, string(r.Key))
}
