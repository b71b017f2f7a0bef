package sorter

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/pool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// ErrNoLog means the range has no log yet and may not be created by its
// owner: it is the child of a split or merge, whose OPEN entry the parents'
// sorter writes (with the child's first snapshot) before sealing them.
var ErrNoLog = errors.New("sorter: range has no log yet")

// Take makes the caller the owner of a range at epoch: it restores the
// range when the pool has its log (appending a TAKEOVER, which fences the
// previous owner, unless the log is already at epoch), and creates it from
// spec otherwise. A range with parents is never created here (ErrNoLog).
// Losing a race with another creator means the range exists: it is then
// restored. A sealed range fails with ErrSealed, an epoch below the log's
// with pool.ErrFenced.
func Take(ctx context.Context, deps Deps, spec pool.RangeSpec, epoch uint64) (*Range, error) {
	head, _, err := pool.FindHead(ctx, deps.Pool, spec.Tenant, spec.RangeID)
	switch {
	case errors.Is(err, pool.ErrNoRange):
		if len(spec.Parents) > 0 {
			return nil, fmt.Errorf("range %d of tenant %d (parents %v): %w", spec.RangeID, spec.Tenant, spec.Parents, ErrNoLog)
		}
		return create(ctx, deps, spec, epoch)
	case err != nil:
		return nil, fmt.Errorf("range %d of tenant %d: find log head: %w", spec.RangeID, spec.Tenant, err)
	case head.Kind == formatv1.RangeLogEntry_KIND_SEAL:
		return nil, fmt.Errorf("range %d of tenant %d: %w", spec.RangeID, spec.Tenant, ErrSealed)
	case head.OwnerEpoch > epoch:
		return nil, fmt.Errorf("range %d of tenant %d: epoch %d, log at epoch %d: %w", spec.RangeID, spec.Tenant, epoch, head.OwnerEpoch, pool.ErrFenced)
	}
	return Restore(ctx, deps, spec.Tenant, spec.RangeID, epoch)
}

func create(ctx context.Context, deps Deps, spec pool.RangeSpec, epoch uint64) (*Range, error) {
	// A buffer left by an earlier owner in this process must not leak in.
	if err := deps.Buffers.Buffer(spec.Tenant<<40 | spec.RangeID).Drop(); err != nil {
		return nil, err
	}
	r, err := Create(ctx, deps, spec, epoch)
	if err == nil && r.writer.Seq() == 1 {
		return r, nil
	}
	if err == nil {
		// Someone created it between our look and our write, and we took
		// it over: its state is in its snapshots.
		r.Close()
	}
	if errors.Is(err, pool.ErrFenced) || ctx.Err() != nil {
		return nil, err
	}
	rr, rerr := Restore(ctx, deps, spec.Tenant, spec.RangeID, epoch)
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return rr, nil
}
