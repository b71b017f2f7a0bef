package usage

import (
	"time"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Hour is the start of the hour t falls in, in unix milliseconds (UTC).
func Hour(t time.Time) int64 { return t.UTC().Truncate(time.Hour).UnixMilli() }

// HourMs is one hour in milliseconds.
const HourMs = int64(time.Hour / time.Millisecond)

// AddCounts adds src to dst: counters are summed, stored bytes (a gauge)
// keep the larger value per class.
func AddCounts(dst, src *metav1.UsageCounts) {
	if src == nil {
		return
	}
	dst.IngestedRows += src.IngestedRows
	dst.IngestedBytes += src.IngestedBytes
	dst.PutRequests += src.PutRequests
	dst.GetRequests += src.GetRequests
	dst.ListRequests += src.ListRequests
	dst.DeleteRequests += src.DeleteRequests
	dst.ServedRows += src.ServedRows
	dst.ServedBytes += src.ServedBytes
	dst.PullMillis += src.PullMillis
	for class, n := range src.StoredBytes {
		if dst.StoredBytes == nil {
			dst.StoredBytes = map[string]uint64{}
		}
		dst.StoredBytes[class] = max(dst.StoredBytes[class], n)
	}
}

// isZero reports whether c counts nothing.
func isZero(c *metav1.UsageCounts) bool {
	return c.IngestedRows == 0 && c.IngestedBytes == 0 && c.PutRequests == 0 && c.GetRequests == 0 &&
		c.ListRequests == 0 && c.DeleteRequests == 0 && c.ServedRows == 0 && c.ServedBytes == 0 &&
		c.PullMillis == 0 && len(c.StoredBytes) == 0
}
