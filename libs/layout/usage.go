package layout

import (
	"fmt"
	"strconv"
	"strings"
)

// Usage records (docs/key-layout.md, "Usage records"): a tenant's metering,
// in its own pool folder; offboarding folds them and copies the hourly
// rollups to the fleet-level usage archive before it deletes the folder. Hours are
// the unix milliseconds of the hour's start, padded, so a listing from an
// hour's prefix finds that hour and the ones after it in order.

// UsagePrefix holds every usage record of a tenant.
func UsagePrefix(tenant uint64) string { return PoolTenantPrefix(tenant) + "usage/" }

// UsageRawPrefix holds the per-process records of an hour.
func UsageRawPrefix(tenant uint64, hourMs int64) string {
	return UsagePrefix(tenant) + "raw/" + Pad(uint64(hourMs)) + "/"
}

// UsageRawKey names flush seq of process incarnation instance in an hour.
// instance must be a safe key segment (SafeSegment).
func UsageRawKey(tenant uint64, hourMs int64, instance string, seq uint64) string {
	return UsageRawPrefix(tenant, hourMs) + instance + "/" + Pad(seq)
}

// UsageSamplePrefix holds the meta-server leader's samples of an hour.
func UsageSamplePrefix(tenant uint64, hourMs int64) string {
	return UsagePrefix(tenant) + "sample/" + Pad(uint64(hourMs)) + "/"
}

// UsageSampleKey names the sample taken at atMs.
func UsageSampleKey(tenant uint64, hourMs, atMs int64) string {
	return UsageSamplePrefix(tenant, hourMs) + Pad(uint64(atMs))
}

// UsageHourlyPrefix holds the rollups, one per hour.
func UsageHourlyPrefix(tenant uint64) string { return UsagePrefix(tenant) + "hourly/" }

// UsageHourlyKey names the rollup of an hour.
func UsageHourlyKey(tenant uint64, hourMs int64) string {
	return UsageHourlyPrefix(tenant) + Pad(uint64(hourMs))
}

// ParseUsageHour reads the hour segment that follows prefix in key.
func ParseUsageHour(key, prefix string) (int64, error) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, fmt.Errorf("object key %q: not under %s", key, prefix)
	}
	seg, _, _ := strings.Cut(rest, "/")
	h, err := parsePad(seg, "hour", key)
	return int64(h), err
}

// SafeSegment makes s usable as one key segment: letters, digits, '-', '_'
// and '.' are kept, anything else becomes '_'.
func SafeSegment(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// UsageArchiveRoot holds the usage of offboarded tenants: outside every
// tenant's folder, so offboarding leaves it and it names no tenant to
// metering (layout.Classify: pool_other).
const UsageArchiveRoot = PoolRoot + "usage-archive/"

// UsageArchiveTenantPrefix holds every archived incarnation of a tenant id.
func UsageArchiveTenantPrefix(tenant uint64) string {
	return fmt.Sprintf("%stenant-%d/", UsageArchiveRoot, tenant)
}

// UsageArchivePrefix holds the archive of one incarnation of a tenant id:
// the one deregistered at deregisteredMs (unix milliseconds, padded), so a
// re-registered id's later offboarding archives beside it, never over it.
func UsageArchivePrefix(tenant uint64, deregisteredMs int64) string {
	return UsageArchiveTenantPrefix(tenant) + Pad(uint64(deregisteredMs)) + "/"
}

// UsageArchiveHourlyKey names an archived rollup: the bytes of
// UsageHourlyKey(tenant, hourMs) as they were.
func UsageArchiveHourlyKey(tenant uint64, deregisteredMs, hourMs int64) string {
	return UsageArchivePrefix(tenant, deregisteredMs) + "hourly/" + Pad(uint64(hourMs))
}

// UsageArchiveDoneKey is written last: the incarnation's archive is
// complete.
func UsageArchiveDoneKey(tenant uint64, deregisteredMs int64) string {
	return UsageArchivePrefix(tenant, deregisteredMs) + "done"
}

// ParseUsageArchiveKey reads the tenant and deregistration time of a key
// under UsageArchiveRoot.
func ParseUsageArchiveKey(key string) (tenant uint64, deregisteredMs int64, err error) {
	rest, ok := strings.CutPrefix(key, UsageArchiveRoot+"tenant-")
	if !ok {
		return 0, 0, fmt.Errorf("object key %q: not under %stenant-", key, UsageArchiveRoot)
	}
	t, rest, _ := strings.Cut(rest, "/")
	seg, _, _ := strings.Cut(rest, "/")
	if tenant, err = strconv.ParseUint(t, 10, 64); err != nil || tenant == 0 {
		return 0, 0, fmt.Errorf("object key %q: bad tenant %q", key, t)
	}
	d, err := parsePad(seg, "deregistration time", key)
	return tenant, int64(d), err
}
