package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// TestForgetMissing: a remembered "not found" is believed until its TTL,
// except under a prefix a notice announced (ForgetMissing); a load that
// started before the notice neither is remembered nor answers the callers
// that came after it.
func TestForgetMissing(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	c := NewCache(1<<20, CacheOptions{NotFoundTTL: time.Hour, Now: func() time.Time { return now }})
	var exists atomic.Bool
	var loads atomic.Int64
	load := func(context.Context) (any, int64, error) {
		loads.Add(1)
		if exists.Load() {
			return "pub", 3, nil
		}
		return nil, 0, objstore.ErrNotFound
	}
	const a, b = "committed_data_pool/tenant-1/group-g/pub/2", "committed_data_pool/tenant-2/group-h/pub/2"
	for _, k := range []string{a, b} {
		_, err := c.get(ctx, k, true, load)
		require.ErrorIs(t, err, objstore.ErrNotFound)
	}
	exists.Store(true)
	_, err := c.get(ctx, a, true, load)
	require.ErrorIs(t, err, objstore.ErrNotFound, "believed until the TTL")
	require.Equal(t, int64(2), loads.Load())

	c.ForgetMissing("committed_data_pool/tenant-1/")
	v, err := c.get(ctx, a, true, load)
	require.NoError(t, err, "tenant 1's notice: read again")
	require.Equal(t, "pub", v)
	_, err = c.get(ctx, b, true, load)
	require.ErrorIs(t, err, objstore.ErrNotFound, "tenant 2 had no notice")

	// A load in flight across a notice: its "not found" is not kept, and
	// a caller that joined after the notice loads again.
	exists.Store(false)
	const k = "committed_data_pool/tenant-1/group-g/pub/3"
	started, release := make(chan struct{}), make(chan struct{})
	slow := func(context.Context) (any, int64, error) {
		close(started)
		<-release
		return nil, 0, objstore.ErrNotFound
	}
	first := make(chan error, 1)
	go func() { _, err := c.get(ctx, k, true, slow); first <- err }()
	<-started
	c.ForgetMissing("committed_data_pool/tenant-1/")
	exists.Store(true) // published, and noticed, while the first GET was out
	late := make(chan any, 1)
	go func() {
		v, err := c.get(ctx, k, true, load)
		if err != nil {
			late <- err
			return
		}
		late <- v
	}()
	close(release)
	require.True(t, errors.Is(<-first, objstore.ErrNotFound))
	require.Equal(t, "pub", <-late, "the caller after the notice must not get the stale not found")
	v, err = c.get(ctx, k, true, load)
	require.NoError(t, err)
	require.Equal(t, "pub", v)
}
