package layout

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		key    string
		want   Purpose
		tenant string // "" = no tenant
	}{
		{StoreFileKey(1, 7, 3, 12, 99), PurposeStoreFile, "7"},
		{StorePrefix(1, 7, 3), PurposeStoreFile, "7"},
		{StoreFileSeqPrefix(1, 7, 3, 12), PurposeStoreFile, "7"},
		{SchemaSnapshotKey(1, 7, 5), PurposeBufferSchema, "7"},
		{TenantBufferPrefix(1, 7), PurposeBufferOther, "7"},
		{BufferRoot + "cluster-1/", PurposeBufferOther, ""},
		{BufferRoot, PurposeBufferOther, ""},
		{DataFileKey(8, 2, 100, 3), PurposePoolData, "8"},
		{DataPrefix(8, 2), PurposePoolData, "8"},
		{DataFileStartAfter(8, 2, 100), PurposePoolData, "8"},
		{RangeLogKey(8, 2, 4), PurposePoolLog, "8"},
		{RangeLogPrefix(8, 2), PurposePoolLog, "8"},
		{RangePrefix(8, 2) + "head", PurposePoolHead, "8"},
		{RangePrefix(8, 2) + "floor/" + Pad(3), PurposePoolFloor, "8"},
		{RangePrefix(8, 2), PurposePoolOther, "8"},
		{PoolTenantPrefix(8) + "group-3/seg/" + Pad(1), PurposePoolSegment, "8"},
		{PoolTenantPrefix(8) + "group-3/pub/" + Pad(1), PurposePoolPublish, "8"},
		{PoolTenantPrefix(8) + "group-3/floor/" + Pad(1), PurposePoolFloor, "8"},
		{PoolTenantPrefix(8) + "group-3/", PurposePoolOther, "8"},
		{PoolTenantPrefix(8) + "group-", PurposePoolOther, "8"}, // listing a tenant's groups
		{PoolTenantPrefix(8) + "group-sorter-1/pub/" + Pad(7), PurposePoolPublish, "8"},
		{ManifestKey(8, 1), PurposePoolManifest, "8"},
		{PoolSchemaSnapshotKey(8, 1), PurposePoolSchema, "8"},
		{PoolTenantPrefix(8), PurposePoolOther, "8"},
		{UsageRawKey(8, 3600000, "sorter-1", 2), PurposePoolUsage, "8"},
		{UsageHourlyPrefix(8), PurposePoolUsage, "8"},
		{PoolRoot, PurposePoolOther, ""},
		{SorterSnapshotKey(9, 1, 2, 3), PurposeSorterSnapshot, "9"},
		{SorterSnapshotPrefix(9, 1), PurposeSorterSnapshot, "9"},
		{SchemaHistoryPrefix(4) + Pad(1), PurposeSchemaRegistry, "4"},
		{SnapshotRoot, PurposeSorterSnapshot, ""},
		{"", PurposeOther, ""},
		{"round-trip/x", PurposeOther, ""},
		{PoolRoot + "tenant-x/manifest/1", PurposePoolOther, ""},
		{PoolRoot + "tenant-/manifest/1", PurposePoolOther, ""},
		{PoolRoot + "tenant--1/manifest/1", PurposePoolOther, ""},
		{PoolRoot + "tenant-99999999999999999999999/manifest/1", PurposePoolOther, ""},
		{BufferRoot + "cluster-1/tenant-2/weird/x", PurposeBufferOther, "2"},
	} {
		p, tenant, ok := Classify(c.key)
		require.Equal(t, c.want, p, c.key)
		if c.tenant == "" {
			require.False(t, ok, c.key)
			continue
		}
		require.True(t, ok, c.key)
		require.Equal(t, c.tenant, strconv.FormatUint(tenant, 10), c.key)
	}
}

func TestPurposeFamilies(t *testing.T) {
	for _, p := range Purposes() {
		require.False(t, p.IsBuffer() && p.IsPool(), p)
	}
	require.True(t, PurposeStoreFile.IsBuffer())
	require.True(t, PurposePoolSegment.IsPool())
	require.False(t, PurposeSorterSnapshot.IsPool())
}

// Classify reads keys from every caller, so it must answer for any string
// with one of its purposes, never panic.
func FuzzClassify(f *testing.F) {
	f.Add(StoreFileKey(1, 7, 3, 12, 99))
	f.Add(DataFileKey(8, 2, 100, 3))
	f.Add(PoolTenantPrefix(8) + "group-3/pub/" + Pad(1))
	f.Add(SorterSnapshotKey(9, 1, 2, 3))
	f.Add("committed_data_pool/tenant-")
	f.Fuzz(func(t *testing.T, key string) {
		p, _, _ := Classify(key)
		for _, q := range Purposes() {
			if p == q {
				return
			}
		}
		t.Fatalf("Classify(%q) = %q, not one of Purposes()", key, p)
	})
}
