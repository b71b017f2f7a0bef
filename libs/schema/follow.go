package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
)

// TiDB's meta range: every key of its catalog starts with 'm'.
var (
	MetaStart = []byte("m")
	MetaEnd   = []byte("n")
)

// PoolSnapshotKey finds the tenant's schema snapshot in the committed data
// pool (the first one, as the tenant started from it) and returns its key
// and ts without reading it. found is false when there is none.
func PoolSnapshotKey(ctx context.Context, store objstore.Store, tenant uint64) (key string, ts uint64, found bool, err error) {
	prefix := layout.PoolSchemaSnapshotPrefix(tenant)
	snaps, _, err := store.List(ctx, prefix, "", 1)
	if err != nil {
		return "", 0, false, fmt.Errorf("list schema snapshots of tenant %d: %w", tenant, err)
	}
	if len(snaps) == 0 {
		return "", 0, false, nil
	}
	key = snaps[0].Key
	name := key[len(prefix):]
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil || len(name) != 20 {
		return "", 0, false, fmt.Errorf("schema snapshot key %q: want %s{ts:020}", key, prefix)
	}
	return key, n, true, nil
}

// ReadPoolSnapshot reads the tenant's schema snapshot file from the
// committed data pool (encoded: a reader that needs part of it scans it
// with schemasnap.Scan). Without one it fails with pool.ErrNoManifest (the
// tenant is not in the pool yet).
func ReadPoolSnapshot(ctx context.Context, store objstore.Store, tenant uint64) (key string, data []byte, err error) {
	key, _, found, err := PoolSnapshotKey(ctx, store, tenant)
	if err != nil {
		return "", nil, err
	}
	if !found {
		return "", nil, fmt.Errorf("tenant %d: no schema snapshot in the pool (%s): %w", tenant, layout.PoolSchemaSnapshotPrefix(tenant), pool.ErrNoManifest)
	}
	if data, err = store.Get(ctx, key); err != nil {
		return "", nil, fmt.Errorf("read schema snapshot: %w", err)
	}
	return key, data, nil
}

// LoadFromPool builds a tenant's history from the schema snapshot in the
// committed data pool. Without one it fails with pool.ErrNoManifest (the
// tenant is not in the pool yet).
func LoadFromPool(ctx context.Context, store objstore.Store, tenant uint64) (*History, error) {
	return LoadFromPoolWith(ctx, store, tenant, nil)
}

// LoadFromPoolWith is LoadFromPool counting the tables it loads in p.
func LoadFromPoolWith(ctx context.Context, store objstore.Store, tenant uint64, p *LoadProgress) (*History, error) {
	key, b, err := ReadPoolSnapshot(ctx, store, tenant)
	if err != nil {
		return nil, err
	}
	h := New(tenant)
	if err := h.loadSnapshotFile(key, b, p); err != nil {
		var corrupt *container.CorruptError
		if errors.As(err, &corrupt) {
			return nil, err // it names the file
		}
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return h, nil
}

// MetaBatch is what one poll of the meta range brings: the committed meta
// rows that became complete, in commit order, and the meta range's resolved
// ts after them.
type MetaBatch struct {
	Rows     []pool.Row
	Resolved uint64
	// CaughtUp: every range followed was at its log's head.
	CaughtUp bool
}

// MetaFollower reads a tenant's meta range from the committed data pool in
// commit order: the sorter has already matched, ordered and published it.
type MetaFollower struct {
	p *pool.Puller
}

// FollowMeta starts reading the meta range at rows with commit_ts >= from.
// It fails with pool.ErrCompacted when the pool no longer holds them.
func FollowMeta(ctx context.Context, store objstore.Store, tenant, from uint64) (*MetaFollower, error) {
	return FollowMetaWith(ctx, store, tenant, from, pool.ReadOptions{})
}

// FollowMetaWith is FollowMeta with read options (a cache shared with the
// reader of the data, bounded polls).
func FollowMetaWith(ctx context.Context, store objstore.Store, tenant, from uint64, o pool.ReadOptions) (*MetaFollower, error) {
	p, err := pool.NewPullerWith(ctx, store, tenant, MetaStart, MetaEnd, nil, from, o)
	if err != nil {
		return nil, fmt.Errorf("follow the meta range of tenant %d from %d: %w", tenant, from, err)
	}
	return &MetaFollower{p: p}, nil
}

// Poll returns what was published since the last call.
func (f *MetaFollower) Poll(ctx context.Context) (MetaBatch, error) {
	rows, resolved, caughtUp, err := f.p.Poll(ctx)
	if err != nil {
		return MetaBatch{}, err
	}
	return MetaBatch{Rows: rows, Resolved: resolved, CaughtUp: caughtUp}, nil
}

// ApplyBatch applies a batch's rows in order and moves the resolved ts. It
// returns how many changes the change log gained. A batch holds whole
// transactions (every row up to its resolved ts), so the history stays
// consistent at every batch boundary; after an error it is not, and must
// be rebuilt.
func (h *History) ApplyBatch(b MetaBatch) (int, error) {
	n := len(h.changes)
	for i := range b.Rows {
		r := &b.Rows[i]
		if _, err := h.ApplyMeta(r.CommitTs, r.Key, r.Op, r.Value); err != nil {
			return 0, err
		}
	}
	h.SetResolved(b.Resolved)
	return len(h.changes) - n, nil
}
