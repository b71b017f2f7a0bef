package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// OldestStart returns the smallest start ts from which a reader of the keys
// [start, end) (end nil = unbounded) can still read the tenant's ranges
// without ErrCompacted. It positions a reader in each range (stepping to
// the oldest start ts each ErrCompacted names), so callers use it to
// explain an ErrCompacted, not on every read.
func OldestStart(ctx context.Context, store objstore.Store, tenant uint64, start, end []byte) (uint64, error) {
	m, err := LoadManifest(ctx, store, tenant)
	if err != nil {
		return 0, err
	}
	byID := map[uint64]*formatv1.RangeDescriptor{}
	for _, d := range m.Ranges {
		byID[d.RangeId] = d
	}
	var oldest uint64
	for _, d := range m.Ranges {
		if !Overlaps(d, start, end) {
			continue
		}
		var need uint64
		if parentsDropped(d, byID) {
			need = d.OpenedAtTs + 1 // what its parents held expired
		}
		got, err := oldestOfRange(ctx, store, tenant, d.RangeId, need)
		switch {
		case errors.Is(err, ErrNoRange):
			// not created yet: nothing expired
		case errors.Is(err, ErrCompacted):
			need = max(need, d.RetiredAtTs+1) // expired as a whole
		case err != nil:
			return 0, fmt.Errorf("range %d of tenant %d: %w", d.RangeId, tenant, err)
		default:
			need = max(need, got)
		}
		if d.State == formatv1.RangeDescriptor_STATE_RETIRED && need > d.RetiredAtTs {
			// A reader starting after the retirement skips the range.
			need = d.RetiredAtTs + 1
		}
		oldest = max(oldest, need)
	}
	return oldest, nil
}

// oldestOfRange returns the smallest start ts at or above from that a
// reader of the range can open at.
func oldestOfRange(ctx context.Context, store objstore.Store, tenant, id, from uint64) (uint64, error) {
	for range 32 {
		_, err := OpenRangeReader(ctx, store, tenant, id, from)
		var ce *CompactedError
		if errors.As(err, &ce) && ce.Oldest > from {
			from = ce.Oldest
			continue
		}
		return from, err
	}
	return 0, fmt.Errorf("range %d of tenant %d: retention keeps moving its oldest start ts", id, tenant)
}
