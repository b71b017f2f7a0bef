package apiserver

import (
	"testing"

	"github.com/stretchr/testify/require"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
)

// TestMembersFromIDs: a database pull's members start from the registry's
// id listing (a sorted list) and change as DDL comes: the answers are those
// of members built from TableInfos.
func TestMembersFromIDs(t *testing.T) {
	m := newMembers()
	m.setBase([]int64{10, 20, 30})
	m.add(&schemav1.Table{Id: 40, PhysicalIds: []int64{41, 42}}) // partitioned
	for _, id := range []int64{10, 20, 30, 41, 42} {
		require.True(t, m.wants(id), "%d", id)
	}
	require.False(t, m.wants(40), "a partitioned table's rows are keyed by its partitions")
	require.True(t, m.has(40))
	require.True(t, m.has(20))

	m.remove(20) // dropped or moved out
	require.False(t, m.wants(20))
	require.False(t, m.has(20))
	m.set(20, []byte(`{"id":20,"partition":{"definitions":[{"id":21},{"id":22}]}}`)) // back, partitioned
	require.True(t, m.has(20))
	require.False(t, m.wants(20))
	require.True(t, m.wants(21) && m.wants(22))
	m.remove(20)
	require.False(t, m.wants(21) || m.wants(22) || m.has(20))
	m.add(&schemav1.Table{Id: 20}) // back, keyed by its own id (a listing without TableInfos)
	require.True(t, m.wants(20) && m.has(20))

	m.remove(40)
	require.False(t, m.wants(41) || m.has(40))
	m.set(50, []byte(`{"id":50}`)) // created in the database
	require.True(t, m.wants(50))
	m.clear()
	for _, id := range []int64{10, 20, 30, 41, 50} {
		require.False(t, m.wants(id) || m.has(id), "%d after clear", id)
	}
}
