// Package layout is the one place that names TiStream's objects in object
// storage (docs/key-layout.md). Numbers in keys are zero-padded decimal so that
// byte order is numeric order and a listing with a start-after marker finds a
// position without reading what comes before it.
package layout

import (
	"fmt"
	"strconv"
	"strings"
)

// Top-level prefixes.
const (
	BufferRoot    = "data_change_buffer/"
	PoolRoot      = "committed_data_pool/"
	SnapshotRoot  = "sorter_snapshots/"
	SchemaRegRoot = "schema_registry/"
)

// Pad renders n as 20 zero-padded decimal digits (the width of max uint64).
func Pad(n uint64) string {
	var b [20]byte
	s := strconv.AppendUint(b[:0], n, 10)
	return strings.Repeat("0", 20-len(s)) + string(s)
}

func parsePad(s, what, key string) (uint64, error) {
	if len(s) != 20 {
		return 0, fmt.Errorf("object key %q: %s %q is not 20 digits", key, what, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("object key %q: %s %q: %w", key, what, s, err)
	}
	return n, nil
}

// TenantBufferPrefix is where one tenant of one upstream cluster pushes.
func TenantBufferPrefix(cluster, tenant uint64) string {
	return fmt.Sprintf("%scluster-%d/tenant-%d/", BufferRoot, cluster, tenant)
}

// StorePrefix holds the change files of one store, in sequence order.
func StorePrefix(cluster, tenant, store uint64) string {
	return fmt.Sprintf("%sstore-%d/", TenantBufferPrefix(cluster, tenant), store)
}

// StoreFileKey names store change file seq, cut at TSO maxTs.
func StoreFileKey(cluster, tenant, store, seq, maxTs uint64) string {
	return StorePrefix(cluster, tenant, store) + Pad(seq) + "-" + Pad(maxTs)
}

// StoreFileSeqPrefix matches the key of file seq whatever its maxTs, so a
// reader that knows only the next seq finds it with one short listing.
func StoreFileSeqPrefix(cluster, tenant, store, seq uint64) string {
	return StorePrefix(cluster, tenant, store) + Pad(seq) + "-"
}

// StoreFileName is a parsed store change file key.
type StoreFileName struct {
	Cluster, Tenant, Store, Seq, MaxTs uint64
}

// ParseStoreFileKey parses a key made by StoreFileKey.
func ParseStoreFileKey(key string) (StoreFileName, error) {
	var n StoreFileName
	rest, ok := strings.CutPrefix(key, BufferRoot)
	if !ok {
		return n, fmt.Errorf("object key %q: not under %s", key, BufferRoot)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return n, fmt.Errorf("object key %q: want cluster-C/tenant-T/store-S/SEQ-MAXTS", key)
	}
	var err error
	if n.Cluster, err = parseLabeled(parts[0], "cluster-", key); err != nil {
		return n, err
	}
	if n.Tenant, err = parseLabeled(parts[1], "tenant-", key); err != nil {
		return n, err
	}
	if n.Store, err = parseLabeled(parts[2], "store-", key); err != nil {
		return n, err
	}
	seq, maxTs, ok := strings.Cut(parts[3], "-")
	if !ok {
		return n, fmt.Errorf("object key %q: file name %q is not SEQ-MAXTS", key, parts[3])
	}
	if n.Seq, err = parsePad(seq, "sequence number", key); err != nil {
		return n, err
	}
	if n.MaxTs, err = parsePad(maxTs, "max ts", key); err != nil {
		return n, err
	}
	return n, nil
}

func parseLabeled(s, label, key string) (uint64, error) {
	v, ok := strings.CutPrefix(s, label)
	if !ok {
		return 0, fmt.Errorf("object key %q: %q does not start with %q", key, s, label)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("object key %q: %q: %w", key, s, err)
	}
	return n, nil
}

// SchemaSnapshotPrefix holds a tenant's initial schema snapshots.
func SchemaSnapshotPrefix(cluster, tenant uint64) string {
	return TenantBufferPrefix(cluster, tenant) + "schema_snap/"
}

// SchemaSnapshotKey names the schema snapshot taken at ts.
func SchemaSnapshotKey(cluster, tenant, ts uint64) string {
	return SchemaSnapshotPrefix(cluster, tenant) + Pad(ts)
}

// PoolTenantPrefix holds one tenant's committed data.
func PoolTenantPrefix(tenant uint64) string {
	return fmt.Sprintf("%stenant-%d/", PoolRoot, tenant)
}

// PoolSchemaSnapshotPrefix holds the schema snapshots copied into the pool,
// so the pool alone (snapshot plus the meta range's committed rows) is
// enough to rebuild a tenant's schema at any retained ts.
func PoolSchemaSnapshotPrefix(tenant uint64) string { return PoolTenantPrefix(tenant) + "schema_snap/" }

// PoolSchemaSnapshotKey names the pool's copy of the snapshot taken at ts.
func PoolSchemaSnapshotKey(tenant, ts uint64) string {
	return PoolSchemaSnapshotPrefix(tenant) + Pad(ts)
}

// ManifestPrefix holds the versions of a tenant's manifest.
func ManifestPrefix(tenant uint64) string { return PoolTenantPrefix(tenant) + "manifest/" }

// ManifestKey names manifest version v.
func ManifestKey(tenant, version uint64) string { return ManifestPrefix(tenant) + Pad(version) }

// RangePrefix holds everything of one range.
func RangePrefix(tenant, rangeID uint64) string {
	return fmt.Sprintf("%srange-%d/", PoolTenantPrefix(tenant), rangeID)
}

// RangeLogPrefix holds a range's log entries.
func RangeLogPrefix(tenant, rangeID uint64) string { return RangePrefix(tenant, rangeID) + "log/" }

// RangeLogKey names log entry seq of a range.
func RangeLogKey(tenant, rangeID, seq uint64) string {
	return RangeLogPrefix(tenant, rangeID) + Pad(seq)
}

// DataPrefix holds a range's committed data files.
func DataPrefix(tenant, rangeID uint64) string { return RangePrefix(tenant, rangeID) + "data/" }

// DataFileKey names the committed data file that covers rows up to watermark
// and is published by log entry seq. Sorting by key sorts by watermark, so a
// reader starting at ts T lists from DataFileStartAfter(T).
func DataFileKey(tenant, rangeID, watermark, seq uint64) string {
	return DataPrefix(tenant, rangeID) + Pad(watermark) + "-" + Pad(seq)
}

// DataFileStartAfter is the start-after marker that makes a listing of
// DataPrefix begin at the first file whose watermark is >= ts.
func DataFileStartAfter(tenant, rangeID, ts uint64) string {
	if ts == 0 {
		return ""
	}
	return DataPrefix(tenant, rangeID) + Pad(ts-1) + "~"
}

// ParseDataFileKey returns the watermark and seq of a data file key.
func ParseDataFileKey(key string) (watermark, seq uint64, err error) {
	i := strings.LastIndex(key, "/")
	name := key[i+1:]
	wm, s, ok := strings.Cut(name, "-")
	if !ok {
		return 0, 0, fmt.Errorf("object key %q: data file name %q is not WATERMARK-SEQ", key, name)
	}
	if watermark, err = parsePad(wm, "watermark", key); err != nil {
		return 0, 0, err
	}
	if seq, err = parsePad(s, "seq", key); err != nil {
		return 0, 0, err
	}
	return watermark, seq, nil
}

// SorterSnapshotPrefix holds the snapshots of one range.
func SorterSnapshotPrefix(tenant, rangeID uint64) string {
	return fmt.Sprintf("%stenant-%d/range-%d/", SnapshotRoot, tenant, rangeID)
}

// SorterSnapshotKey names snapshot n of a range written by owner epoch.
func SorterSnapshotKey(tenant, rangeID, epoch, n uint64) string {
	return SorterSnapshotPrefix(tenant, rangeID) + Pad(epoch) + "-" + Pad(n)
}

// SchemaHistoryPrefix holds the schema registry's persisted history of a tenant.
func SchemaHistoryPrefix(tenant uint64) string {
	return fmt.Sprintf("%stenant-%d/", SchemaRegRoot, tenant)
}

// Group publications (committed data pool format version 2): one group per
// sorter process and tenant publishes the rows and watermarks of every
// range it owns.

// GroupsPrefix holds every group of a tenant (group-{g}/...).
func GroupsPrefix(tenant uint64) string { return PoolTenantPrefix(tenant) + "group-" }

// GroupPrefix holds everything of one group.
func GroupPrefix(tenant uint64, group string) string { return GroupsPrefix(tenant) + group + "/" }

// GroupPubPrefix holds a group's publications.
func GroupPubPrefix(tenant uint64, group string) string { return GroupPrefix(tenant, group) + "pub/" }

// GroupPubKey names publication seq of a group.
func GroupPubKey(tenant uint64, group string, seq uint64) string {
	return GroupPubPrefix(tenant, group) + Pad(seq)
}

// GroupSegPrefix holds a group's segments.
func GroupSegPrefix(tenant uint64, group string) string { return GroupPrefix(tenant, group) + "seg/" }

// GroupSegKey names the segment holding publications first..last. Keys
// sort by last, so GroupSegStartAfter finds the segment covering a seq.
func GroupSegKey(tenant uint64, group string, last, first uint64) string {
	return GroupSegPrefix(tenant, group) + Pad(last) + "-" + Pad(first)
}

// GroupSegStartAfter is the start-after marker that makes a listing of
// GroupSegPrefix begin at the first segment whose last seq is >= seq.
func GroupSegStartAfter(tenant uint64, group string, seq uint64) string {
	if seq == 0 {
		return ""
	}
	return GroupSegPrefix(tenant, group) + Pad(seq-1) + "~"
}

// ParseGroupSegKey returns the seqs a segment key covers.
func ParseGroupSegKey(key string) (last, first uint64, err error) {
	name := key[strings.LastIndex(key, "/")+1:]
	l, f, ok := strings.Cut(name, "-")
	if !ok {
		return 0, 0, fmt.Errorf("object key %q: segment name %q is not LAST-FIRST", key, name)
	}
	if last, err = parsePad(l, "last seq", key); err != nil {
		return 0, 0, err
	}
	if first, err = parsePad(f, "first seq", key); err != nil {
		return 0, 0, err
	}
	if first > last {
		return 0, 0, fmt.Errorf("object key %q: segment from %d to %d", key, first, last)
	}
	return last, first, nil
}

// ParseGroupSeqKey returns the seq a publication or floor key ends with.
func ParseGroupSeqKey(key string) (uint64, error) {
	return parsePad(key[strings.LastIndex(key, "/")+1:], "seq", key)
}

// GroupFloorPrefix holds a group's retention floor markers.
func GroupFloorPrefix(tenant uint64, group string) string {
	return GroupPrefix(tenant, group) + "floor/"
}

// GroupFloorKey names the floor marker at seq.
func GroupFloorKey(tenant uint64, group string, seq uint64) string {
	return GroupFloorPrefix(tenant, group) + Pad(seq)
}

// ValidGroupID reports whether g can name a group: 1 to 128 characters of
// [A-Za-z0-9._-], not starting with a dot.
func ValidGroupID(g string) bool {
	if g == "" || len(g) > 128 || g[0] == '.' {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
