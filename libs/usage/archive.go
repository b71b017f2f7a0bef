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

// The usage archive (docs/tenants.md, "Offboarding"; docs/key-layout.md):
// before offboarding deletes a tenant's pool folder, the leader rolls up
// its last hours (FinalRollup) and copies every HOURLY record, as it is, to
// layout.UsageArchivePrefix(tenant, deregistered): outside the folder, and
// keyed by the deregistration time, so a later incarnation of the same id
// has its own folder and, when offboarded in turn, its own archive. The
// done marker is written last; QueryArchive reads only complete archives.

// Archived reports whether the archive of the incarnation of tenant
// deregistered at deregisteredMs is complete.
func Archived(ctx context.Context, s objstore.Store, tenant uint64, deregisteredMs int64) (bool, error) {
	_, err := s.Get(ctx, layout.UsageArchiveDoneKey(tenant, deregisteredMs))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, objstore.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read the usage archive's marker: %w", err)
}

// Archive copies tenant's HOURLY records to the archive of the incarnation
// deregistered at deregisteredMs (put-if-absent: the same bytes under the
// same keys, so a copy that stops anywhere and runs again lands once), then
// writes the done marker. It returns the hours archived. Run FinalRollup
// first: RAW and SAMPLE records are not archived.
func Archive(ctx context.Context, s objstore.Store, tenant uint64, deregisteredMs int64) (int, error) {
	hours, err := hourlyKeys(ctx, s, tenant)
	if err != nil {
		return 0, err
	}
	for _, h := range hours {
		b, err := s.Get(ctx, layout.UsageHourlyKey(tenant, h))
		if err != nil {
			return 0, fmt.Errorf("read usage rollup to archive: %w", err)
		}
		if _, err := Decode(layout.UsageHourlyKey(tenant, h), b); err != nil {
			return 0, err // not copied: a damaged record would be damaged forever
		}
		key := layout.UsageArchiveHourlyKey(tenant, deregisteredMs, h)
		if err := s.PutIfAbsent(ctx, key, b); err != nil && !errors.Is(err, objstore.ErrExists) {
			return 0, fmt.Errorf("archive usage rollup %s: %w", key, err)
		}
	}
	done := layout.UsageArchiveDoneKey(tenant, deregisteredMs)
	marker := fmt.Appendf(nil, "tenant %d deregistered %s: %d hours\n", tenant,
		time.UnixMilli(deregisteredMs).UTC().Format(time.RFC3339), len(hours))
	if err := s.PutIfAbsent(ctx, done, marker); err != nil && !errors.Is(err, objstore.ErrExists) {
		return 0, fmt.Errorf("write the usage archive's marker %s: %w", done, err)
	}
	return len(hours), nil
}

// archives lists the complete archives of tenant's incarnations: for each
// deregistration time, its hourly records' keys in order.
func archives(ctx context.Context, s objstore.Store, tenant uint64) (map[int64][]string, error) {
	objs, err := objstore.ListAll(ctx, s, layout.UsageArchiveTenantPrefix(tenant), "")
	if err != nil {
		return nil, fmt.Errorf("list the usage archive: %w", err)
	}
	keys, done := map[int64][]string{}, map[int64]bool{}
	for _, o := range objs {
		_, d, err := layout.ParseUsageArchiveKey(o.Key)
		if err != nil {
			continue
		}
		if o.Key == layout.UsageArchiveDoneKey(tenant, d) {
			done[d] = true
		} else {
			keys[d] = append(keys[d], o.Key)
		}
	}
	maps.DeleteFunc(keys, func(d int64, _ []string) bool { return !done[d] })
	for d := range done {
		if keys[d] == nil {
			keys[d] = []string{} // archived with no usage
		}
	}
	return keys, nil
}

// QueryArchive answers GetUsage for tenant's offboarded incarnations: the
// archived hours overlapping [fromMs, toMs) (toMs 0: no end), all final.
// An hour two incarnations share (one offboarded, the next registered in
// the same hour) is their sum. found is false when the id has no complete
// archive.
func QueryArchive(ctx context.Context, s objstore.Store, tenant uint64, fromMs, toMs int64) (resp *metav1.GetUsageResponse, found bool, err error) {
	if toMs != 0 && toMs <= fromMs {
		return nil, false, errors.New("usage query: to must be after from")
	}
	arch, err := archives(ctx, s, tenant)
	if err != nil || len(arch) == 0 {
		return nil, false, err
	}
	hours := map[int64]*metav1.UsageHour{}
	for _, d := range slices.Sorted(maps.Keys(arch)) {
		prefix := layout.UsageArchivePrefix(tenant, d) + "hourly/"
		for _, key := range arch[d] {
			h, err := layout.ParseUsageHour(key, prefix)
			if err != nil || h+HourMs <= fromMs || (toMs != 0 && h >= toMs) {
				continue
			}
			b, err := s.Get(ctx, key)
			if err != nil {
				return nil, false, fmt.Errorf("read archived usage: %w", err)
			}
			r, err := Decode(key, b)
			if err != nil {
				return nil, false, err
			}
			if hours[h] == nil {
				hours[h] = &metav1.UsageHour{HourUnixMs: h, Counts: &metav1.UsageCounts{}, Final: true}
			}
			AddCounts(hours[h].Counts, r.Counts)
		}
	}
	resp = &metav1.GetUsageResponse{Total: &metav1.UsageCounts{}}
	for _, h := range slices.Sorted(maps.Keys(hours)) {
		resp.Hours = append(resp.Hours, hours[h])
		AddCounts(resp.Total, hours[h].Counts)
	}
	return resp, true, nil
}

// PruneArchive deletes the archives of incarnations deregistered more than
// retention before now (retention 0: none). It returns how many objects it
// deleted. The marker goes last, so an archive cut short is still found
// (and pruned) next time.
func PruneArchive(ctx context.Context, s objstore.Store, now time.Time, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	objs, err := objstore.ListAll(ctx, s, layout.UsageArchiveRoot, "")
	if err != nil {
		return 0, fmt.Errorf("list the usage archive: %w", err)
	}
	cut := now.Add(-retention).UnixMilli()
	var markers []string
	n := 0
	for _, o := range objs {
		tenant, d, err := layout.ParseUsageArchiveKey(o.Key)
		if err != nil || d >= cut {
			continue
		}
		if o.Key == layout.UsageArchiveDoneKey(tenant, d) {
			markers = append(markers, o.Key)
			continue
		}
		if err := s.Delete(ctx, o.Key); err != nil {
			return n, fmt.Errorf("delete expired archived usage: %w", err)
		}
		n++
	}
	for _, k := range markers {
		if err := s.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("delete expired archived usage: %w", err)
		}
		n++
	}
	return n, nil
}
