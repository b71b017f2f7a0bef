package layout

import (
	"fmt"
	"strings"
)

// Usage records (docs/key-layout.md, "Usage records"): a tenant's metering,
// in its own pool folder so offboarding deletes it with the rest. Hours are
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
