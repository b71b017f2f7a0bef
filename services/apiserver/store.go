package apiserver

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/objstore"
)

// countingStore counts the object-store requests the pulls make.
type countingStore struct {
	objstore.Store
	gets, getRanges, lists prometheus.Counter
}

func newCountingStore(s objstore.Store, m *metrics) *countingStore {
	return &countingStore{Store: s, gets: m.storeRequests.WithLabelValues("get"),
		getRanges: m.storeRequests.WithLabelValues("get_range"), lists: m.storeRequests.WithLabelValues("list")}
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Inc()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.getRanges.Inc()
	return c.Store.GetRange(ctx, key, off, n)
}

func (c *countingStore) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	c.lists.Inc()
	return c.Store.List(ctx, prefix, startAfter, limit)
}
