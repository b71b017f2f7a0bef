package objstoretest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// Objects written in parts (objstore.PutParts, objstore.PutIfAbsentParts):
// the object is the parts' concatenation, with the one-slice methods'
// semantics. The cases go through the package functions, so they hold for
// a store that implements objstore.PartsPutter and for one that gets the
// joined object through Put and PutIfAbsent alike.

// putOne writes an object given in one slice (perhaps cutting it into
// parts).
type putOne func(ctx context.Context, s objstore.Store, key string, data []byte) error

var partsPuts = []struct {
	name string
	put  func(ctx context.Context, s objstore.Store, key string, parts ...[]byte) error
}{
	{"PutParts", objstore.PutParts},
	{"PutIfAbsentParts", objstore.PutIfAbsentParts},
}

// randomBytes is n bytes of a fixed pseudo-random sequence.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// splitAt cuts data at the given offsets (ascending, within data): the
// parts alias data.
func splitAt(data []byte, cuts ...int) [][]byte {
	var parts [][]byte
	prev := 0
	for _, c := range cuts {
		parts = append(parts, data[prev:c])
		prev = c
	}
	return append(parts, data[prev:])
}

// RandomParts cuts data into n parts (n >= 1) at pseudo-random offsets
// (seeded), some of them empty; the parts alias data. For tests of objects
// written in parts.
func RandomParts(seed uint64, data []byte, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 11))
	cuts := make([]int, n-1)
	for i := range cuts {
		cuts[i] = rng.IntN(len(data) + 1)
	}
	slices.Sort(cuts)
	return splitAt(data, cuts...)
}

func testPartsRoundTrip(ctx context.Context, t *testing.T, s objstore.Store) {
	big := randomBytes(1, 3<<20+17)
	for _, c := range []struct {
		name  string
		parts [][]byte
	}{
		{"no parts", nil},
		{"empty parts", [][]byte{{}, nil, {}}},
		{"one", [][]byte{[]byte("a single part")}},
		{"one empty", [][]byte{{}}},
		{"many", [][]byte{[]byte("index|"), []byte("section one|"), []byte("section two|"), []byte("3")}},
		{"empty between", [][]byte{nil, []byte("a"), {}, []byte("bc"), nil, {}, []byte("d"), nil}},
		{"binary", [][]byte{{0}, {0xff, 0xfe}, {'\n', 0}}},
		// Large parts and runs of small ones, as a publication of a few
		// busy ranges among many idle ones has them.
		{"3MiB in two", splitAt(big, 100)},
		{"3MiB in 300", RandomParts(2, big, 300)},
		{"3MiB in 20000", RandomParts(3, big, 20000)},
	} {
		want := slices.Concat(c.parts...)
		for _, p := range partsPuts {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				key := "parts/" + p.name + "/" + c.name
				require.NoError(t, p.put(ctx, s, key, c.parts...))
				got, err := s.Get(ctx, key)
				require.NoError(t, err)
				requireBytes(t, want, got)
				objs, _, err := s.List(ctx, key, "", 0)
				require.NoError(t, err)
				require.Equal(t, []objstore.ObjectInfo{{Key: key, Size: int64(len(want))}}, objs)
				if len(want) > 10 {
					got, err = s.GetRange(ctx, key, 3, 7)
					require.NoError(t, err)
					requireBytes(t, want[3:10], got, "a range across parts")
				}
			})
		}
	}

	// PutParts replaces, like Put; and Put replaces an object written in parts.
	require.NoError(t, objstore.PutParts(ctx, s, "parts/replaced", []byte("a long "), []byte("first version")))
	require.NoError(t, objstore.PutParts(ctx, s, "parts/replaced", []byte("v"), []byte("2")))
	got, err := s.Get(ctx, "parts/replaced")
	require.NoError(t, err)
	require.Equal(t, "v2", string(got))
	require.NoError(t, s.Put(ctx, "parts/replaced", []byte("v3")))
	got, err = s.Get(ctx, "parts/replaced")
	require.NoError(t, err)
	require.Equal(t, "v3", string(got))

	// The store keeps nothing of the parts: callers reuse them.
	for _, p := range partsPuts {
		a, b := []byte("orig"), []byte("inal")
		key := "parts/copied/" + p.name
		require.NoError(t, p.put(ctx, s, key, a, b))
		copy(a, "CHAN")
		copy(b, "GED!")
		got, err := s.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, "original", string(got), p.name)
	}
}

func testPutIfAbsentParts(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, objstore.PutIfAbsentParts(ctx, s, "lease/owner", []byte("fi"), []byte("rst")))
	for _, parts := range [][][]byte{
		{[]byte("sec"), []byte("ond")},
		{[]byte("fi"), []byte("rst")}, // the same bytes are a loss too
		{[]byte("first")},
		nil,
	} {
		err := objstore.PutIfAbsentParts(ctx, s, "lease/owner", parts...)
		require.ErrorIs(t, err, objstore.ErrExists, "%q", parts)
		require.Contains(t, err.Error(), "lease/owner")
	}
	require.ErrorIs(t, s.PutIfAbsent(ctx, "lease/owner", []byte("third")), objstore.ErrExists)
	got, err := s.Get(ctx, "lease/owner")
	require.NoError(t, err)
	require.Equal(t, "first", string(got))

	// A key made by Put or PutParts is taken; a deleted one is free again.
	require.NoError(t, objstore.PutParts(ctx, s, "lease/put", []byte("x"), []byte("y")))
	require.ErrorIs(t, objstore.PutIfAbsentParts(ctx, s, "lease/put", []byte("z"), nil), objstore.ErrExists)
	require.NoError(t, s.Delete(ctx, "lease/put"))
	require.NoError(t, objstore.PutIfAbsentParts(ctx, s, "lease/put", []byte("z"), []byte("w")))
	got, err = s.Get(ctx, "lease/put")
	require.NoError(t, err)
	require.Equal(t, "zw", string(got))

	// An empty object made of no parts exists.
	require.NoError(t, objstore.PutIfAbsentParts(ctx, s, "lease/empty"))
	require.ErrorIs(t, objstore.PutIfAbsentParts(ctx, s, "lease/empty", nil, nil), objstore.ErrExists)
	require.ErrorIs(t, s.PutIfAbsent(ctx, "lease/empty", nil), objstore.ErrExists)
}

// testAtomicCreateParts: while objects are created in many parts, a reader
// sees each either not at all or whole.
func testAtomicCreateParts(ctx context.Context, t *testing.T, s objstore.Store) {
	const (
		objects  = 40
		maxReads = 20000
	)
	key := func(v int) string { return fmt.Sprintf("create/%03d", v) }
	var done atomic.Bool
	writeErr := make(chan error, 1)
	go func() {
		defer done.Store(true)
		for v := 1; v <= objects; v++ {
			data := atomicPayload(v)
			if err := objstore.PutIfAbsentParts(ctx, s, key(v), RandomParts(uint64(v), data, 1+v%9)...); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	next, reads, seen := 1, 0, 0
	for ; reads < maxReads && !done.Load() && next <= objects; reads++ {
		got, err := s.Get(ctx, key(next))
		if err != nil {
			require.ErrorIs(t, err, objstore.ErrNotFound, "read %d of %s", reads, key(next))
			continue
		}
		require.NoError(t, checkWhole(got), "read %d of %s", reads, key(next))
		require.Equal(t, atomicPayload(next)[0], got[0], key(next))
		next++
		seen++
	}
	require.NoError(t, <-writeErr)
	require.Positive(t, reads)
	for v := 1; v <= objects; v++ {
		got, err := s.Get(ctx, key(v))
		require.NoError(t, err)
		requireBytes(t, atomicPayload(v), got, key(v))
	}
	t.Logf("%d reads, %d objects seen while being written", reads, seen)
}

// putPartsOfPayload writes atomicPayload-style data in a few parts.
func putPartsOfPayload(ctx context.Context, s objstore.Store, key string, data []byte) error {
	return objstore.PutParts(ctx, s, key, RandomParts(uint64(len(data)), data, 5)...)
}
