package metered_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
)

// The wrapper is a Store: it keeps the whole contract of what it wraps.
func TestMeteredContract(t *testing.T) {
	objstoretest.RunContract(t, func(*testing.T) objstore.Store {
		return metered.NewMetrics(prometheus.NewRegistry()).Wrap(objstore.NewMemory(), "test", layout.Labels)
	})
}

// failing is a store whose every request fails.
type failing struct{ objstore.Store }

var errBroken = errors.New("broken")

func (failing) Put(context.Context, string, []byte) error { return errBroken }

func TestMeteredCounts(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := metered.NewMetrics(reg)
	mem := objstore.NewMemory()
	s := m.Wrap(mem, "sorter", layout.Labels)

	data := layout.DataFileKey(7, 1, 100, 1)
	require.NoError(t, s.PutIfAbsent(ctx, data, []byte("12345")))
	require.ErrorIs(t, s.PutIfAbsent(ctx, data, []byte("x")), objstore.ErrExists)
	got, err := s.GetRange(ctx, data, 1, 2)
	require.NoError(t, err)
	require.Equal(t, "23", string(got))
	_, err = s.Get(ctx, layout.RangeLogKey(7, 1, 9))
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.NoError(t, s.Put(ctx, layout.SorterSnapshotKey(7, 1, 1, 1), []byte("snap")))
	_, err = objstore.ListAll(ctx, s, layout.StorePrefix(1, 3, 2), "")
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, "not/a/tistream/key"))
	require.ErrorIs(t, m.Wrap(failing{mem}, "api-server", layout.Labels).Put(ctx, layout.ManifestKey(7, 1), nil), errBroken)

	requests, bytes, err := metered.Gather(reg)
	require.NoError(t, err)
	type req struct{ service, purpose, kind, outcome, tenant string }
	gotReqs := map[req]float64{}
	for _, r := range requests {
		gotReqs[req{r.Service, r.Purpose, r.Kind, r.Outcome, r.Tenant}] = r.Value
	}
	require.Equal(t, map[req]float64{
		{"sorter", "pool_data", "put_if_absent", "ok", "7"}:     1,
		{"sorter", "pool_data", "put_if_absent", "exists", "7"}: 1,
		{"sorter", "pool_data", "get_range", "ok", "7"}:         1,
		{"sorter", "pool_log", "get", "not_found", "7"}:         1,
		{"sorter", "sorter_snapshot", "put", "ok", "7"}:         1,
		{"sorter", "store_file", "list", "ok", "3"}:             1,
		{"sorter", "other", "delete", "ok", ""}:                 1,
		{"api-server", "pool_manifest", "put", "error", "7"}:    1,
	}, gotReqs)
	type byt struct{ purpose, direction string }
	gotBytes := map[byt]float64{}
	for _, b := range bytes {
		require.Equal(t, "sorter", b.Service)
		gotBytes[byt{b.Purpose, b.Direction}] += b.Value
	}
	require.Equal(t, map[byt]float64{
		{"pool_data", "in"}:       5, // the losing put-if-absent sent nothing that stayed
		{"pool_data", "out"}:      2,
		{"sorter_snapshot", "in"}: 4,
	}, gotBytes)
}

// Every page of a listing is a request.
func TestMeteredListPages(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	mem := objstore.NewMemory()
	for i := range 2500 {
		require.NoError(t, mem.Put(ctx, layout.RangeLogKey(1, 1, uint64(i)), nil))
	}
	s := metered.NewMetrics(reg).Wrap(mem, "api-server", layout.Labels)
	objs, err := objstore.ListAll(ctx, s, layout.RangeLogPrefix(1, 1), "")
	require.NoError(t, err)
	require.Len(t, objs, 2500)
	requests, _, err := metered.Gather(reg)
	require.NoError(t, err)
	require.Len(t, requests, 1)
	require.Equal(t, float64(3), requests[0].Value)
}

// tapRecorder records what a Tap sees.
type tapRecorder struct{ seen []string }

func (r *tapRecorder) Request(purpose, tenant, kind string) {
	r.seen = append(r.seen, purpose+"|"+tenant+"|"+kind)
}

// The tap sees every request with its tenant; the tenant label goes
// through the guard (the tap still gets the real tenant).
func TestMeteredTapAndTenantLabel(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	tap := &tapRecorder{}
	first := ""
	guard := func(tenant string) string {
		if tenant == "" || first == "" || tenant == first {
			if tenant != "" {
				first = tenant
			}
			return tenant
		}
		return "other"
	}
	s := metered.NewMetrics(reg).WithTap(tap).WithTenantLabel(guard).Wrap(objstore.NewMemory(), "sorter", layout.Labels)
	require.NoError(t, s.Put(ctx, layout.DataFileKey(7, 1, 1, 1), []byte("x")))
	_, err := s.Get(ctx, layout.DataFileKey(8, 1, 1, 1))
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.Equal(t, []string{"pool_data|7|put", "pool_data|8|get"}, tap.seen)
	requests, _, err := metered.Gather(reg)
	require.NoError(t, err)
	tenants := map[string]bool{}
	for _, r := range requests {
		tenants[r.Tenant] = true
	}
	require.Equal(t, map[string]bool{"7": true, "other": true}, tenants)
}

// partsSpy records the writes in parts that reach it.
type partsSpy struct {
	objstore.Store
	parts int
}

func (s *partsSpy) PutParts(ctx context.Context, key string, parts [][]byte) error {
	s.parts++
	return s.Store.(objstore.PartsPutter).PutParts(ctx, key, parts)
}

func (s *partsSpy) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	s.parts++
	return s.Store.(objstore.PartsPutter).PutIfAbsentParts(ctx, key, parts)
}

// An object written in parts is one put (or put-if-absent) of its whole
// bytes, and reaches the wrapped store in parts.
func TestMeteredParts(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	spy := &partsSpy{Store: objstore.NewMemory()}
	s := metered.NewMetrics(reg).Wrap(spy, "sorter", layout.Labels)
	pub := layout.GroupPubKey(7, "g", 1)
	require.NoError(t, objstore.PutIfAbsentParts(ctx, s, pub, []byte("index"), []byte("12"), nil, []byte("345")))
	require.ErrorIs(t, objstore.PutIfAbsentParts(ctx, s, pub, []byte("x"), []byte("y")), objstore.ErrExists)
	require.NoError(t, objstore.PutParts(ctx, s, layout.SorterSnapshotKey(7, 1, 1, 1), []byte("sn"), []byte("ap")))
	require.Equal(t, 3, spy.parts, "passed on in parts")
	got, err := spy.Get(ctx, pub)
	require.NoError(t, err)
	require.Equal(t, "index12345", string(got))

	requests, bytes, err := metered.Gather(reg)
	require.NoError(t, err)
	gotReqs := map[string]float64{}
	for _, r := range requests {
		gotReqs[r.Purpose+"|"+r.Kind+"|"+r.Outcome] = r.Value
	}
	require.Equal(t, map[string]float64{
		"pool_publish|put_if_absent|ok":     1,
		"pool_publish|put_if_absent|exists": 1,
		"sorter_snapshot|put|ok":            1,
	}, gotReqs)
	gotBytes := map[string]float64{}
	for _, b := range bytes {
		gotBytes[b.Purpose+"|"+b.Direction] = b.Value
	}
	require.Equal(t, map[string]float64{"pool_publish|in": 10, "sorter_snapshot|in": 4}, gotBytes)
}
