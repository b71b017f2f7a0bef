package objstoretest

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// sizeRecorder remembers the length of what each key was last written with
// and shows it in List results, after checking that the stored size is not
// smaller (Options.StoredSizes).
type sizeRecorder struct {
	objstore.Store
	t       *testing.T
	mu      sync.Mutex
	written map[string]int64
}

func newSizeRecorder(t *testing.T, s objstore.Store) *sizeRecorder {
	return &sizeRecorder{Store: s, t: t, written: map[string]int64{}}
}

func (r *sizeRecorder) record(key string, n int64, err error) error {
	if err == nil {
		r.mu.Lock()
		r.written[key] = n
		r.mu.Unlock()
	}
	return err
}

func (r *sizeRecorder) Put(ctx context.Context, key string, data []byte) error {
	return r.record(key, int64(len(data)), r.Store.Put(ctx, key, data))
}

func (r *sizeRecorder) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return r.record(key, int64(len(data)), r.Store.PutIfAbsent(ctx, key, data))
}

func (r *sizeRecorder) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return r.record(key, int64(objstore.PartsLen(parts)), objstore.PutParts(ctx, r.Store, key, parts...))
}

func (r *sizeRecorder) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return r.record(key, int64(objstore.PartsLen(parts)), objstore.PutIfAbsentParts(ctx, r.Store, key, parts...))
}

func (r *sizeRecorder) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	objs, more, err := r.Store.List(ctx, prefix, startAfter, limit)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range objs {
		if n, ok := r.written[o.Key]; ok {
			require.GreaterOrEqual(r.t, o.Size, n, "stored size of %q", o.Key)
			objs[i].Size = n
		}
	}
	return objs, more, err
}
