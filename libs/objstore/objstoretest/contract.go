package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// caseTimeout bounds each contract case, so a hung store fails the case
// instead of the whole test binary's timeout.
const caseTimeout = 2 * time.Minute

// RunContract runs the store contract as subtests. newStore must return a
// fresh, empty store for each call (for a shared backend, a new prefix).
func RunContract(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	RunContractWith(t, Options{}, newStore)
}

// Options adapt the contract to a kind of store.
type Options struct {
	// StoredSizes: List reports what the store keeps, which is larger than
	// what was written (an encrypting wrapper, libs/crypt). The cases then
	// see the written lengths in List results, and the suite checks that
	// each listed size is at least that.
	StoredSizes bool
}

// RunContractWith is RunContract for a store that needs Options.
func RunContractWith(t *testing.T, o Options, newStore func(t *testing.T) objstore.Store) {
	cases := []struct {
		name string
		run  func(ctx context.Context, t *testing.T, s objstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"PutIfAbsent", testPutIfAbsent},
		{"ConcurrentPutIfAbsent", testConcurrentPutIfAbsent},
		{"GetRange", testGetRange},
		{"GetRangeEmptyObject", testGetRangeEmptyObject},
		{"GetRangeInto", testGetRangeInto},
		{"ListOrder", testListOrder},
		{"ListPrefix", testListPrefix},
		{"ListStartAfter", testListStartAfter},
		{"ListPagination", testListPagination},
		{"ListDefaultLimit", testListDefaultLimit},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"UnusualValidKeys", testUnusualValidKeys},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"PartsRoundTrip", testPartsRoundTrip},
		{"PutIfAbsentParts", testPutIfAbsentParts},
		{"ConcurrentPutIfAbsentParts", testConcurrentPutIfAbsentParts},
		{"AtomicCreateParts", testAtomicCreateParts},
		{"AtomicOverwriteParts", testAtomicOverwriteParts},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			s := newStore(t)
			if o.StoredSizes {
				s = newSizeRecorder(t, s)
			}
			c.run(ctx, t, s)
		})
	}
}

// requireBytes compares payloads by length and hash first, so a mismatch of
// an 8 MiB object does not print two hex dumps.
func requireBytes(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	if len(want) > 256 || len(got) > 256 {
		require.Equal(t, len(want), len(got), msgAndArgs...)
		require.Equal(t, sha256.Sum256(want), sha256.Sum256(got), msgAndArgs...)
		return
	}
	if len(want) == 0 {
		require.Empty(t, got, msgAndArgs...)
		return
	}
	require.Equal(t, string(want), string(got), msgAndArgs...)
}

// putAll stores every key with its own name as content.
func putAll(ctx context.Context, t *testing.T, s objstore.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.NoError(t, s.Put(ctx, k, []byte(k)))
	}
}

// keysOf returns the keys of a List result.
func keysOf(objs []objstore.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

// filled returns n bytes all equal to b.
func filled(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
