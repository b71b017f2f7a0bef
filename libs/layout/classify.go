package layout

import (
	"strconv"
	"strings"
)

// Purpose names the family of objects a key (or a listing prefix) belongs
// to: what a request to object storage is for. The set is fixed, so it is a
// bounded metric label (docs/operations.md, "Object-store requests").
type Purpose string

// The purposes, by top-level prefix.
const (
	// data_change_buffer/
	PurposeStoreFile    Purpose = "store_file"    // cluster-C/tenant-T/store-S/SEQ-MAXTS
	PurposeBufferSchema Purpose = "buffer_schema" // cluster-C/tenant-T/schema_snap/TS
	PurposeBufferOther  Purpose = "buffer_other"  // anything else, e.g. listing the clusters or tenants
	// committed_data_pool/tenant-T/
	PurposePoolData     Purpose = "pool_data"     // range-R/data/WM-SEQ: committed data files
	PurposePoolLog      Purpose = "pool_log"      // range-R/log/SEQ: range log entries
	PurposePoolHead     Purpose = "pool_head"     // range-R/head: the log head hint
	PurposePoolFloor    Purpose = "pool_floor"    // range-R/floor/SEQ, group-G/floor/...: retention floors
	PurposePoolSegment  Purpose = "pool_segment"  // group-G/seg/...: a sorter group's data segments
	PurposePoolPublish  Purpose = "pool_publish"  // group-G/pub/...: a sorter group's publications
	PurposePoolManifest Purpose = "pool_manifest" // manifest/VERSION
	PurposePoolSchema   Purpose = "pool_schema"   // schema_snap/TS: the pool's copy of the schema snapshots
	PurposePoolUsage    Purpose = "pool_usage"    // usage/...: metering records
	PurposePoolOther    Purpose = "pool_other"    // anything else under the pool, e.g. a whole range's prefix
	// the others
	PurposeSorterSnapshot Purpose = "sorter_snapshot" // sorter_snapshots/tenant-T/range-R/EPOCH-N
	PurposeSchemaRegistry Purpose = "schema_registry" // schema_registry/tenant-T/...
	PurposeOther          Purpose = "other"           // not a TiStream key
)

// Purposes lists every purpose Classify returns.
func Purposes() []Purpose {
	return []Purpose{PurposeStoreFile, PurposeBufferSchema, PurposeBufferOther,
		PurposePoolData, PurposePoolLog, PurposePoolHead, PurposePoolFloor, PurposePoolSegment, PurposePoolPublish,
		PurposePoolManifest, PurposePoolSchema, PurposePoolUsage, PurposePoolOther,
		PurposeSorterSnapshot, PurposeSchemaRegistry, PurposeOther}
}

// IsBuffer reports whether p is an object of the data change buffer.
func (p Purpose) IsBuffer() bool {
	return p == PurposeStoreFile || p == PurposeBufferSchema || p == PurposeBufferOther
}

// IsPool reports whether p is an object of the committed data pool.
func (p Purpose) IsPool() bool { return strings.HasPrefix(string(p), "pool_") }

// Classify names what key is for, and its tenant when the key says it
// (hasTenant false otherwise). key may be a whole key or a prefix that a
// listing uses: a prefix is classified by the segments it has. It only
// reads the key, never fails, and returns a tenant id only when the tenant
// segment is a whole decimal number, so its answers are bounded labels.
func Classify(key string) (p Purpose, tenant uint64, hasTenant bool) {
	root, rest, _ := strings.Cut(key, "/")
	switch root + "/" {
	case BufferRoot:
		_, rest, _ = strings.Cut(rest, "/") // cluster-C
		tenant, hasTenant, rest = tenantSegment(rest)
		next, _, _ := strings.Cut(rest, "/")
		switch {
		case !hasTenant:
			return PurposeBufferOther, tenant, hasTenant
		case strings.HasPrefix(next, "store-"):
			return PurposeStoreFile, tenant, hasTenant
		case next == "schema_snap":
			return PurposeBufferSchema, tenant, hasTenant
		}
		return PurposeBufferOther, tenant, hasTenant
	case PoolRoot:
		tenant, hasTenant, rest = tenantSegment(rest)
		if !hasTenant {
			return PurposePoolOther, tenant, hasTenant
		}
		return poolPurpose(rest), tenant, hasTenant
	case SnapshotRoot:
		tenant, hasTenant, _ = tenantSegment(rest)
		return PurposeSorterSnapshot, tenant, hasTenant
	case SchemaRegRoot:
		tenant, hasTenant, _ = tenantSegment(rest)
		return PurposeSchemaRegistry, tenant, hasTenant
	}
	return PurposeOther, 0, false
}

// poolPurpose classifies what follows committed_data_pool/tenant-T/.
func poolPurpose(rest string) Purpose {
	first, rest, _ := strings.Cut(rest, "/")
	second, _, _ := strings.Cut(rest, "/")
	switch {
	case first == "manifest":
		return PurposePoolManifest
	case first == "schema_snap":
		return PurposePoolSchema
	case first == "usage":
		return PurposePoolUsage
	case strings.HasPrefix(first, "range-"):
		switch second {
		case "data":
			return PurposePoolData
		case "log":
			return PurposePoolLog
		case "head":
			return PurposePoolHead
		case "floor":
			return PurposePoolFloor
		}
	case strings.HasPrefix(first, "group-"):
		switch second {
		case "seg":
			return PurposePoolSegment
		case "pub":
			return PurposePoolPublish
		case "floor":
			return PurposePoolFloor
		}
	}
	return PurposePoolOther
}

// tenantSegment parses a leading "tenant-T" segment and returns what
// follows it.
func tenantSegment(s string) (tenant uint64, ok bool, rest string) {
	seg, rest, _ := strings.Cut(s, "/")
	v, found := strings.CutPrefix(seg, "tenant-")
	if !found || v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false, rest
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, rest
	}
	return n, true, rest
}

// Labels is Classify as metric label values: the purpose and the tenant id
// in decimal ("" when the key names none).
func Labels(key string) (purpose, tenant string) {
	p, t, ok := Classify(key)
	if ok {
		tenant = strconv.FormatUint(t, 10)
	}
	return string(p), tenant
}
