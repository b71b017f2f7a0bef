package objstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

func testConcurrentPutIfAbsent(ctx context.Context, t *testing.T, s objstore.Store) {
	concurrentPutIfAbsent(ctx, t, s, "lease/", func(ctx context.Context, s objstore.Store, key string, data []byte) error {
		return s.PutIfAbsent(ctx, key, data)
	})
}

func testConcurrentPutIfAbsentParts(ctx context.Context, t *testing.T, s objstore.Store) {
	concurrentPutIfAbsent(ctx, t, s, "lease/parts-", func(ctx context.Context, s objstore.Store, key string, data []byte) error {
		return objstore.PutIfAbsentParts(ctx, s, key, data[:3], nil, data[3:9], data[9:])
	})
}

// concurrentPutIfAbsent races writers creating the same key with put: one
// wins, and the object is its.
func concurrentPutIfAbsent(ctx context.Context, t *testing.T, s objstore.Store, prefix string, put putOne) {
	const writers = 16
	for round := range 3 {
		key := fmt.Sprintf("%s%d", prefix, round)
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start // release all writers at once to make them race
				errs[w] = put(ctx, s, key, []byte(fmt.Sprintf("writer %02d of round %d", w, round)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: writers %d and %d both won", round, winner, w)
				winner = w
				continue
			}
			require.ErrorIs(t, err, objstore.ErrExists, "round %d writer %d", round, w)
		}
		require.NotEqual(t, -1, winner, "round %d: nobody won", round)
		got, err := s.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("writer %02d of round %d", winner, round), string(got))
	}
}

// atomicPayload is version v of the object in testAtomicOverwrite: every byte
// equals tag(v) and the length is a function of the tag, so a reader can tell
// a whole version from a torn or truncated one.
func atomicPayload(v int) []byte {
	tag := byte(v%250 + 1)
	return filled(tag, atomicLen(tag))
}

func atomicLen(tag byte) int { return (1+int(tag)%48)<<12 + int(tag) }

func testAtomicOverwrite(ctx context.Context, t *testing.T, s objstore.Store) {
	atomicOverwrite(ctx, t, s, func(ctx context.Context, s objstore.Store, key string, data []byte) error {
		return s.Put(ctx, key, data)
	})
}

func testAtomicOverwriteParts(ctx context.Context, t *testing.T, s objstore.Store) {
	atomicOverwrite(ctx, t, s, putPartsOfPayload)
}

// atomicOverwrite checks that a reader sees one whole version or another
// while put replaces the object again and again.
func atomicOverwrite(ctx context.Context, t *testing.T, s objstore.Store, put putOne) {
	const (
		writes   = 150
		maxReads = 20000
	)
	require.NoError(t, s.Put(ctx, "atomic", atomicPayload(0)))
	var done atomic.Bool
	writeErr := make(chan error, 1)
	go func() {
		defer done.Store(true)
		for v := 1; v <= writes; v++ {
			if err := put(ctx, s, "atomic", atomicPayload(v)); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	reads := 0
	for ; reads < maxReads && !done.Load(); reads++ {
		got, err := s.Get(ctx, "atomic")
		require.NoError(t, err)
		require.NoError(t, checkWhole(got), "read %d", reads)
	}
	require.NoError(t, <-writeErr)
	require.Positive(t, reads)
	got, err := s.Get(ctx, "atomic")
	require.NoError(t, err)
	requireBytes(t, atomicPayload(writes), got)
}

// checkWhole reports whether data is one whole atomicPayload.
func checkWhole(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty payload")
	}
	tag := data[0]
	if len(data) != atomicLen(tag) {
		return fmt.Errorf("payload tagged %d has %d bytes, want %d (truncated or mixed)", tag, len(data), atomicLen(tag))
	}
	for i, b := range data {
		if b != tag {
			return fmt.Errorf("payload tagged %d has byte %d at offset %d (mixed versions)", tag, b, i)
		}
	}
	return nil
}
