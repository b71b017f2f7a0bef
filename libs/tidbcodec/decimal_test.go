package tidbcodec

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewDecimal(t *testing.T) {
	for _, tc := range []struct {
		in           string
		prec, frac   int
		want         string
		wantP, wantF int
		ok           bool
	}{
		{"1.5", 5, 2, "1.50", 5, 2, true},
		{"+007.25", 5, 2, "7.25", 5, 2, true},
		{"-0", 5, 2, "0.00", 5, 2, true}, // TiDB's parser drops the sign of zero
		{"-0.0", 5, 2, "0.00", 5, 2, true},
		{"-000", 3, 0, "0", 3, 0, true},
		{"123.456", 0, 0, "123.456", 6, 3, true}, // shape from the text
		{"0.001", 0, 0, "0.001", 3, 3, true},
		{"0", 0, 0, "0", 1, 0, true},
		{"99999", 5, 0, "99999", 5, 0, true},
		{"100000", 5, 0, "", 0, 0, false}, // overflow
		{"1.234", 5, 2, "", 0, 0, false},  // would truncate
		{"1.", 5, 2, "", 0, 0, false},
		{".5", 5, 2, "", 0, 0, false},
		{"1e5", 5, 2, "", 0, 0, false},
		{"", 5, 2, "", 0, 0, false},
		{"1", 82, 0, "", 0, 0, false},
		{"1", 40, 31, "", 0, 0, false},
		{"1", 2, 3, "", 0, 0, false},
	} {
		d, err := NewDecimal(tc.in, tc.prec, tc.frac)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, d.String(), tc.in)
		require.Equal(t, tc.wantP, d.Precision(), tc.in)
		require.Equal(t, tc.wantF, d.Frac(), tc.in)
	}
}

func TestDecimalBinKnown(t *testing.T) {
	for _, tc := range []struct {
		in         string
		prec, frac int
		hex        string
	}{
		// MySQL's documented example: 1 | 234567890 | 1234, 14 digits with 4 fraction.
		{"1234567890.1234", 14, 4, "0e04" + "810dfb38d204d2"},
		{"-1234567890.1234", 14, 4, "0e04" + "7ef204c72dfb2d"},
		{"0", 1, 0, "0100" + "80"},
		{"0.00", 5, 2, "0502" + "800000"},
		{"5", 10, 0, "0a00" + "8000000005"},
		{"-1", 3, 1, "0301" + "7eff"},
	} {
		d := MustDecimal(tc.in, tc.prec, tc.frac)
		got, err := appendDecimal(nil, d)
		require.NoError(t, err)
		require.Equal(t, tc.hex, hex.EncodeToString(got), tc.in)
		back, err := decodeDecimal(got)
		require.NoError(t, err)
		require.Equal(t, d, back)
	}
}

// TiDB's arithmetic can make a negative zero, which it writes with the
// sign bits of a negative number; it must survive decode and re-encode.
func TestNegativeZeroDecimal(t *testing.T) {
	const negZero = "0502" + "7fffff" // DECIMAL(5,2) -0.00
	d, err := decodeDecimal(unhex(t, negZero))
	require.NoError(t, err)
	require.Equal(t, "-0.00", d.String())
	back, err := appendDecimal(nil, d)
	require.NoError(t, err)
	require.Equal(t, negZero, hex.EncodeToString(back))
}

func TestDecodeDecimalErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hex    string
		offset int
	}{
		{"short", "0100", 0},
		{"precision 0", "000080", 0},
		{"scale above precision", "010280", 0},
		{"scale above 30", "281f" + "80000000000000000000000000000000", 0},
		{"too few digit bytes", "0e04810dfb38d204", 2},
		{"too many digit bytes", "01008000", 2},
		{"leading group too big", "0100" + "8a", 2}, // 10 in a 1-digit group
		{"word too big", "0900" + "bb9aca00", 2},    // 1e9 in a 9-digit word
		{"trailing group too big", "0201" + "800a", 3},
		{"negative zero without fraction", "0500" + "7fffff", 2}, // TiDB never writes it
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDecimal(unhex(t, tc.hex))
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, tc.offset, err.(*DecodeError).Offset, "%v", err)
		})
	}
}

func TestAppendZeroDecimal(t *testing.T) {
	_, err := appendDecimal(nil, Decimal{})
	require.Error(t, err)
}
