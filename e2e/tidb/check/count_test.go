package check

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/e2e/tidb/server"
)

// TestPartitionCounts: only the partitions TiDB's SQL schema at the
// snapshot and its meta keys agree on are counted; a partition created
// before the stream is neither counted nor reported; the others are
// reported with both lists.
func TestPartitionCounts(t *testing.T) {
	tb := server.Table{DB: "ddl1", Name: "p", ID: 140, PhysicalIDs: []int64{141, 143, 144}}
	perID := map[int64]int{143: 719, 144: 680} // 141 existed before the stream

	// The case seen: SQL lists a later version's partitions.
	plan := partitionCounts(tb, 7, perID, []partition{{"p0", 160}, {"p2", 158}, {"p3", 165}})
	require.Empty(t, plan.count)
	require.Len(t, plan.skipped, 1)
	for _, s := range []string{"ddl1.p", "[143 144]", "at 7", "[158 160 165]", "[141 143 144]"} {
		require.True(t, strings.Contains(plan.skipped[0], s), "%q in %q", s, plan.skipped[0])
	}

	// Partly: the ids both agree on are counted.
	plan = partitionCounts(tb, 7, perID, []partition{{"p0", 141}, {"p1", 144}, {"p2", 158}})
	require.Equal(t, []partition{{"p1", 144}}, plan.count)
	require.Len(t, plan.skipped, 1)
	require.Contains(t, plan.skipped[0], "[143]")

	// The write-only step of DROP PARTITION p1: the meta keys and SQL still
	// list it, SQL reads nothing of it (seen in CI: COUNT(*) 0, 111 keys).
	dropping := tb
	dropping.PartitionsInDDL = []int64{143}
	plan = partitionCounts(dropping, 7, perID, []partition{{"p0", 141}, {"p1", 143}, {"p2", 144}})
	require.Equal(t, []partition{{"p2", 144}}, plan.count)
	require.Len(t, plan.skipped, 1)
	for _, s := range []string{"ddl1.p", "[143]", "at 7", "DDL job"} {
		require.True(t, strings.Contains(plan.skipped[0], s), "%q in %q", s, plan.skipped[0])
	}

	// Agreeing schemas: every read partition counted, nothing skipped.
	plan = partitionCounts(tb, 7, perID, []partition{{"p0", 141}, {"p1", 143}, {"p2", 144}})
	require.Equal(t, []partition{{"p1", 143}, {"p2", 144}}, plan.count)
	require.Empty(t, plan.skipped)
}
