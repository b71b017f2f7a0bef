package usage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Totals are a tenant's cumulative ingest totals: the sum of its streams'
// checkpoint counters.
type Totals struct{ Rows, Bytes uint64 }

// WriteSample records a leader sample of tenant taken at: stored bytes by
// class and the cumulative ingest totals.
func WriteSample(ctx context.Context, s objstore.Store, tenant uint64, at time.Time, stored map[string]uint64, t Totals) error {
	h := Hour(at)
	return putOnce(ctx, s, layout.UsageSampleKey(tenant, h, at.UnixMilli()), &metav1.UsageRecord{
		Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_SAMPLE, TenantId: tenant, HourUnixMs: h,
		WrittenUnixMs: at.UnixMilli(), Counts: &metav1.UsageCounts{StoredBytes: stored},
		IngestedRowsTotal: t.Rows, IngestedBytesTotal: t.Bytes})
}

// Fold folds the RAW and SAMPLE records of one hour into its HOURLY
// record. start is where the hour's ingest begins (the previous hourly
// record's end); the hour's ingest is its largest sample minus start, and
// it ends there (at start when it has no sample, so the next hour counts
// what this one could not see).
func Fold(tenant uint64, hourMs int64, start Totals, recs []*metav1.UsageRecord) *metav1.UsageRecord {
	out := &metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_HOURLY, TenantId: tenant,
		HourUnixMs: hourMs, Counts: &metav1.UsageCounts{}}
	end := start
	for _, r := range recs {
		switch r.Kind {
		case metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW:
			AddCounts(out.Counts, r.Counts)
			out.RawRecords++
		case metav1.UsageRecordKind_USAGE_RECORD_KIND_SAMPLE:
			AddCounts(out.Counts, &metav1.UsageCounts{StoredBytes: r.Counts.GetStoredBytes()})
			end.Rows = max(end.Rows, r.IngestedRowsTotal)
			end.Bytes = max(end.Bytes, r.IngestedBytesTotal)
			out.Samples++
		}
	}
	out.Counts.IngestedRows = end.Rows - start.Rows
	out.Counts.IngestedBytes = end.Bytes - start.Bytes
	out.IngestedRowsTotal, out.IngestedBytesTotal = end.Rows, end.Bytes
	return out
}

// pendingHours reads the RAW and SAMPLE records (only hours not rolled up
// keep them) of the hours want accepts (nil: all), by hour: the hour is in
// the key, so the records of other hours are listed, not read. Records
// written before sinceMs are an earlier incarnation's of the tenant id (a
// process that flushed after it was offboarded): they are left out, their
// hour kept (with no records) so that its rollup deletes them.
func pendingHours(ctx context.Context, s objstore.Store, tenant uint64, sinceMs int64, want func(hourMs int64) bool) (map[int64][]*metav1.UsageRecord, []error, error) {
	byHour := map[int64][]*metav1.UsageRecord{}
	var bad []error
	for _, kind := range []string{"raw/", "sample/"} {
		prefix := layout.UsagePrefix(tenant) + kind
		keep := func(key string) bool {
			h, err := layout.ParseUsageHour(key, prefix)
			return want == nil || err != nil || want(h) // a bad key is read, and reported by Decode
		}
		recs, _, b, err := readAll(ctx, s, prefix, keep)
		if err != nil {
			return nil, nil, err
		}
		bad = append(bad, b...)
		for _, r := range recs {
			switch {
			case r.TenantId != tenant:
			case r.WrittenUnixMs < sinceMs:
				byHour[r.HourUnixMs] = byHour[r.HourUnixMs] // deleted, not counted
			default:
				byHour[r.HourUnixMs] = append(byHour[r.HourUnixMs], r)
			}
		}
	}
	return byHour, bad, nil
}

// hourlyKeys lists the hours that have a rollup, ascending.
func hourlyKeys(ctx context.Context, s objstore.Store, tenant uint64) ([]int64, error) {
	prefix := layout.UsageHourlyPrefix(tenant)
	objs, err := objstore.ListAll(ctx, s, prefix, "")
	if err != nil {
		return nil, fmt.Errorf("list usage rollups: %w", err)
	}
	hours := make([]int64, 0, len(objs))
	for _, o := range objs {
		h, err := layout.ParseUsageHour(o.Key, prefix)
		if err == nil {
			hours = append(hours, h)
		}
	}
	return hours, nil
}

// readHourly reads the rollup of an hour.
func readHourly(ctx context.Context, s objstore.Store, tenant uint64, hourMs int64) (*metav1.UsageRecord, error) {
	key := layout.UsageHourlyKey(tenant, hourMs)
	b, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read usage rollup: %w", err)
	}
	return Decode(key, b)
}

// startOf is where hour h's ingest begins: the end of the latest rollup
// before it (zero when there is none).
func startOf(ctx context.Context, s objstore.Store, tenant uint64, rolled []int64, h int64) (Totals, error) {
	i, _ := slices.BinarySearch(rolled, h)
	if i == 0 {
		return Totals{}, nil
	}
	r, err := readHourly(ctx, s, tenant, rolled[i-1])
	if err != nil {
		return Totals{}, err
	}
	return Totals{r.IngestedRowsTotal, r.IngestedBytesTotal}, nil
}

// Rollup folds every hour of tenant that ended at least grace before now
// into its HOURLY record (put-if-absent), then deletes the hour's RAW and
// SAMPLE records. Every step is idempotent and the inputs are immutable,
// so a rollup that stops anywhere and runs again, here or on another
// leader, writes the same record once. Records written for an hour after
// its rollup are not counted (deleted with the others). It returns the
// hours rolled up.
func Rollup(ctx context.Context, s objstore.Store, tenant uint64, now time.Time, grace time.Duration) ([]int64, error) {
	return RollupSince(ctx, s, tenant, 0, now, grace)
}

// RollupSince is Rollup of the incarnation of tenant registered at sinceMs
// (unix milliseconds): records written before it are an earlier
// incarnation's, deleted and not counted.
func RollupSince(ctx context.Context, s objstore.Store, tenant uint64, sinceMs int64, now time.Time, grace time.Duration) ([]int64, error) {
	return rollup(ctx, s, tenant, sinceMs, now, func(h int64) bool { return !time.UnixMilli(h + HourMs).Add(grace).After(now) })
}

// FinalRollup rolls up every hour of tenant that has records, the current
// one included, as Rollup does (the same records, the same idempotence):
// the last rollup of an offboarded tenant, whose processes have all let go
// of it. Records written for an hour after it are not counted.
func FinalRollup(ctx context.Context, s objstore.Store, tenant uint64, sinceMs int64, now time.Time) ([]int64, error) {
	return rollup(ctx, s, tenant, sinceMs, now, func(int64) bool { return true })
}

func rollup(ctx context.Context, s objstore.Store, tenant uint64, sinceMs int64, now time.Time, closed func(hourMs int64) bool) ([]int64, error) {
	byHour, _, err := pendingHours(ctx, s, tenant, sinceMs, closed)
	if err != nil {
		return nil, err
	}
	if len(byHour) == 0 {
		return nil, nil
	}
	rolled, err := hourlyKeys(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	var done []int64
	for _, h := range slices.Sorted(maps.Keys(byHour)) {
		if !closed(h) {
			break
		}
		if _, found := slices.BinarySearch(rolled, h); !found && len(byHour[h]) > 0 {
			start, err := startOf(ctx, s, tenant, rolled, h)
			if err != nil {
				return done, err
			}
			rec := Fold(tenant, h, start, byHour[h])
			rec.WrittenUnixMs = now.UnixMilli()
			if err := putOnce(ctx, s, layout.UsageHourlyKey(tenant, h), rec); err != nil {
				return done, err
			}
			rolled = append(rolled, h)
			slices.Sort(rolled)
		}
		for _, prefix := range []string{layout.UsageRawPrefix(tenant, h), layout.UsageSamplePrefix(tenant, h)} {
			if err := deleteAll(ctx, s, prefix); err != nil {
				return done, err
			}
		}
		done = append(done, h)
	}
	return done, nil
}

func deleteAll(ctx context.Context, s objstore.Store, prefix string) error {
	objs, err := objstore.ListAll(ctx, s, prefix, "")
	if err != nil {
		return fmt.Errorf("list rolled-up usage records: %w", err)
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete rolled-up usage record: %w", err)
		}
	}
	return nil
}

// Query answers GetUsage: tenant's usage in the hours overlapping
// [fromMs, toMs), from the rollups, and for hours not rolled up yet from
// their records so far (final false). live, when set, are the tenant's
// ingest totals now (read from its checkpoints): they count as a sample of
// the current hour, so the open hour's ingest is up to date.
func Query(ctx context.Context, s objstore.Store, tenant uint64, fromMs, toMs int64, live *Totals, now time.Time) (*metav1.GetUsageResponse, error) {
	return QuerySince(ctx, s, tenant, 0, fromMs, toMs, live, now)
}

// QuerySince is Query of the incarnation of tenant registered at sinceMs
// (see RollupSince).
func QuerySince(ctx context.Context, s objstore.Store, tenant uint64, sinceMs, fromMs, toMs int64, live *Totals, now time.Time) (*metav1.GetUsageResponse, error) {
	if toMs != 0 && toMs <= fromMs {
		return nil, errors.New("usage query: to must be after from")
	}
	if toMs == 0 {
		toMs = now.UnixMilli() + 1
	}
	byHour, _, err := pendingHours(ctx, s, tenant, sinceMs, nil)
	if err != nil {
		return nil, err
	}
	if live != nil {
		h := Hour(now)
		byHour[h] = append(byHour[h], &metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_SAMPLE,
			HourUnixMs: h, Counts: &metav1.UsageCounts{}, IngestedRowsTotal: live.Rows, IngestedBytesTotal: live.Bytes})
	}
	rolled, err := hourlyKeys(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	in := func(h int64) bool { return h+HourMs > fromMs && h < toMs }
	resp := &metav1.GetUsageResponse{Total: &metav1.UsageCounts{}}
	hours := map[int64]*metav1.UsageHour{}
	for _, h := range rolled {
		if !in(h) {
			continue
		}
		r, err := readHourly(ctx, s, tenant, h)
		if err != nil {
			return nil, err
		}
		hours[h] = &metav1.UsageHour{HourUnixMs: h, Counts: r.Counts, Final: true}
	}
	// Hours not rolled up, in order: each starts where the one before it
	// (rolled up or folded here) ends.
	folded, lastEnd := int64(-1), Totals{}
	for _, h := range slices.Sorted(maps.Keys(byHour)) {
		i, ok := slices.BinarySearch(rolled, h)
		if ok || len(byHour[h]) == 0 {
			continue // rolled up meanwhile (its leftovers are being deleted), or only an earlier incarnation's
		}
		start := lastEnd
		if folded < 0 || (i > 0 && rolled[i-1] > folded) {
			if start, err = startOf(ctx, s, tenant, rolled, h); err != nil {
				return nil, err
			}
		}
		rec := Fold(tenant, h, start, byHour[h])
		folded, lastEnd = h, Totals{rec.IngestedRowsTotal, rec.IngestedBytesTotal}
		if in(h) {
			hours[h] = &metav1.UsageHour{HourUnixMs: h, Counts: rec.Counts}
		}
	}
	for _, h := range slices.Sorted(maps.Keys(hours)) {
		resp.Hours = append(resp.Hours, hours[h])
		AddCounts(resp.Total, hours[h].Counts)
	}
	return resp, nil
}
