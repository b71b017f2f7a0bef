package tidbcodec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEncodeIntKnown(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
		{1, []byte{0x80, 0, 0, 0, 0, 0, 0, 1}},
		{-1, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{math.MinInt64, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{math.MaxInt64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	} {
		got := EncodeInt(nil, tc.v)
		require.Equal(t, tc.want, got, "EncodeInt(%d)", tc.v)
		v, rest, err := DecodeInt(append(got, 9))
		require.NoError(t, err)
		require.Equal(t, tc.v, v)
		require.Equal(t, []byte{9}, rest)
	}
}

func TestMemcomparableOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ints := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}
	for range 200 {
		ints = append(ints, int64(r.Uint64()))
	}
	floats := []float64{math.Inf(-1), -1e300, -1, -1e-300, 0, 1e-300, 1, 1e300, math.Inf(1)}
	for range 200 {
		floats = append(floats, r.NormFloat64()*1e6)
	}
	var strs [][]byte
	for range 300 {
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(3)) // few symbols: many shared prefixes and zero bytes
		}
		strs = append(strs, b)
	}
	checkOrder(t, ints, func(v int64) []byte { return EncodeInt(nil, v) }, func(a, b int64) int { return compareInt64(a, b) })
	checkOrder(t, floats, func(v float64) []byte { return EncodeFloat(nil, v) }, func(a, b float64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	checkOrder(t, strs, func(v []byte) []byte { return EncodeBytes(nil, v) }, bytes.Compare)
}

func checkOrder[T any](t *testing.T, vals []T, enc func(T) []byte, cmp func(a, b T) int) {
	t.Helper()
	slices.SortFunc(vals, cmp)
	for i := 1; i < len(vals); i++ {
		want := cmp(vals[i-1], vals[i])
		got := bytes.Compare(enc(vals[i-1]), enc(vals[i]))
		require.Equal(t, want, got, "order of %v and %v", vals[i-1], vals[i])
	}
}

func TestEncodeBytesKnown(t *testing.T) {
	// The examples in TiDB's and MyRocks' description of the format.
	for _, tc := range []struct {
		in, want []byte
	}{
		{[]byte{}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xf7}},
		{[]byte{1, 2, 3}, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0xfa}},
		{[]byte{1, 2, 3, 0}, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0xfb}},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xf7}},
	} {
		got := EncodeBytes(nil, tc.in)
		require.Equal(t, tc.want, got)
		require.Len(t, got, EncodedBytesLen(len(tc.in)))
		dec, rest, err := DecodeBytes(append(got, 0xAA))
		require.NoError(t, err)
		require.Equal(t, tc.in, dec)
		require.Equal(t, []byte{0xAA}, rest)
	}
}

func TestDecodeErrors(t *testing.T) {
	full := []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff}
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
		offset int
	}{
		{"int short", func(b []byte) error { _, _, err := DecodeInt(b); return err }, []byte{1, 2, 3}, 0},
		{"uint short", func(b []byte) error { _, _, err := DecodeUint(b); return err }, nil, 0},
		{"float short", func(b []byte) error { _, _, err := DecodeFloat(b); return err }, []byte{1}, 0},
		{"bytes empty", decodeBytesErr, nil, 0},
		{"bytes short group", decodeBytesErr, []byte{1, 2, 3}, 0},
		{"bytes bad marker", decodeBytesErr, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0xf6}, 8},
		{"bytes bad padding", decodeBytesErr, []byte{1, 2, 3, 0, 0, 0, 9, 0, 0xfa}, 6},
		{"bytes no final group", decodeBytesErr, full, 9},
		{"bytes bad second marker", decodeBytesErr, append(slices.Clone(full), 0, 0, 0, 0, 0, 0, 0, 0, 0x10), 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(tc.in)
			require.ErrorIs(t, err, ErrMalformed)
			var de *DecodeError
			require.True(t, errors.As(err, &de))
			require.Equal(t, tc.offset, de.Offset, "%v", err)
		})
	}
}

func decodeBytesErr(b []byte) error {
	_, _, err := DecodeBytes(b)
	return err
}

func TestFloatRoundTrip(t *testing.T) {
	for _, f := range []float64{0, 1.5, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(-1), math.Inf(1)} {
		got, rest, err := DecodeFloat(EncodeFloat(nil, f))
		require.NoError(t, err)
		require.Empty(t, rest)
		require.Equal(t, math.Float64bits(f), math.Float64bits(got))
	}
	// As in TiDB, -0 takes +0's encoding (the sign test is f >= 0), so it
	// reads back as +0; and a positive-signed NaN does not survive at all.
	negZero, _, err := DecodeFloat(EncodeFloat(nil, math.Copysign(0, -1)))
	require.NoError(t, err)
	require.Equal(t, uint64(0), math.Float64bits(negZero))
	nan, _, err := DecodeFloat(EncodeFloat(nil, math.NaN()))
	require.NoError(t, err)
	require.False(t, math.IsNaN(nan))
}
