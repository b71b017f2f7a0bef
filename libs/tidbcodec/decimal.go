package tidbcodec

import (
	"fmt"
	"strings"
)

// DECIMAL values. TiDB (like MySQL) stores a decimal of precision p and scale
// f as fixed-size big-endian groups of up to 9 decimal digits, aligned on the
// decimal point:
//
//	[leading int digits (p-f)%9][9-digit int words...][9-digit frac words...][trailing frac digits f%9]
//
// A full 9-digit word takes 4 bytes; a partial group of n digits takes
// decimalGroupBytes[n] bytes. A negative value has every byte inverted; then
// the top bit of the first byte is flipped, so the bytes sort like the
// numbers. Row format v2 prefixes the groups with one byte of precision and
// one of scale.

const (
	digitsPerWord      = 9
	maxDecimalWords    = 9  // TiDB's buffer: 81 digits
	maxDecimalScale    = 30 // MySQL's and TiDB's DECIMAL scale limit
	maxDecimalDigits   = digitsPerWord * maxDecimalWords
	decimalSignFlipBit = 0x80
)

var decimalGroupBytes = [digitsPerWord + 1]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// Decimal is an exact DECIMAL(precision, frac) value held as canonical text:
// an optional '-', the integer digits without leading zeros ("0" if none)
// and, when frac > 0, '.' and exactly frac fraction digits. Two Decimals are
// equal (==) exactly when they encode to the same bytes.
type Decimal struct {
	text            string
	precision, frac uint8
}

// NewDecimal makes a DECIMAL(precision, frac) value from decimal text
// ("-12.5", "+3", "0.125"). As in TiDB, a value with more integer digits
// than precision-frac (overflow) or more fraction digits than frac
// (truncation) is an error: round before encoding. Fewer fraction digits are
// padded with zeros. precision == 0 (with frac == 0) takes precision and
// scale from the text, as TiDB does for a decimal datum without a length.
//
// Like TiDB's parser, "-0.0" is plain zero. (A negative zero can still come
// from TiDB's arithmetic; it has its own bytes, which DecodeRow reads as
// "-0.0..." and EncodeRow writes back unchanged.)
func NewDecimal(text string, precision, frac int) (Decimal, error) {
	neg, intDigits, fracDigits, err := splitDecimalText(text)
	if err != nil {
		return Decimal{}, err
	}
	if precision == 0 && frac == 0 {
		frac = len(fracDigits)
		precision = max(len(intDigits)+frac, 1)
	}
	if err := checkDecimalShape(precision, frac); err != nil {
		return Decimal{}, fmt.Errorf("tidbcodec: decimal %q: %s", text, err)
	}
	if len(intDigits) > precision-frac {
		return Decimal{}, fmt.Errorf("tidbcodec: decimal %q overflows DECIMAL(%d,%d)", text, precision, frac)
	}
	if len(fracDigits) > frac {
		return Decimal{}, fmt.Errorf("tidbcodec: decimal %q has more than %d fraction digits", text, frac)
	}
	if intDigits == "" && strings.Trim(fracDigits, "0") == "" {
		neg = false
	}
	return Decimal{
		text:      formatDecimal(neg, intDigits, fracDigits+strings.Repeat("0", frac-len(fracDigits))),
		precision: uint8(precision),
		frac:      uint8(frac),
	}, nil
}

// MustDecimal is NewDecimal for constants in tests and examples; it panics
// on an invalid value.
func MustDecimal(text string, precision, frac int) Decimal {
	d, err := NewDecimal(text, precision, frac)
	if err != nil {
		panic(err)
	}
	return d
}

// String returns the canonical text.
func (d Decimal) String() string { return d.text }

// Precision is the total number of digits of the type.
func (d Decimal) Precision() int { return int(d.precision) }

// Frac is the number of fraction digits of the type.
func (d Decimal) Frac() int { return int(d.frac) }

func checkDecimalShape(precision, frac int) error {
	switch {
	case precision < 1 || precision > maxDecimalDigits:
		return fmt.Errorf("precision %d outside 1..%d", precision, maxDecimalDigits)
	case frac < 0 || frac > maxDecimalScale:
		return fmt.Errorf("scale %d outside 0..%d", frac, maxDecimalScale)
	case frac > precision:
		return fmt.Errorf("scale %d exceeds precision %d", frac, precision)
	}
	return nil
}

// splitDecimalText parses [+-]digits[.digits] and drops leading zeros of
// the integer part.
func splitDecimalText(text string) (neg bool, intDigits, fracDigits string, err error) {
	s := text
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intDigits, fracDigits, hasPoint := strings.Cut(s, ".")
	if intDigits == "" || (hasPoint && fracDigits == "") || !allDigits(intDigits) || !allDigits(fracDigits) {
		return false, "", "", fmt.Errorf("tidbcodec: %q is not a decimal number", text)
	}
	return neg, strings.TrimLeft(intDigits, "0"), fracDigits, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func formatDecimal(neg bool, intDigits, fracDigits string) string {
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if intDigits == "" {
		intDigits = "0"
	}
	b.WriteString(intDigits)
	if fracDigits != "" {
		b.WriteByte('.')
		b.WriteString(fracDigits)
	}
	return b.String()
}

// decimalBinSize is the size of the digit groups of DECIMAL(precision, frac).
func decimalBinSize(precision, frac int) int {
	intDigits := precision - frac
	return intDigits/digitsPerWord*4 + decimalGroupBytes[intDigits%digitsPerWord] +
		frac/digitsPerWord*4 + decimalGroupBytes[frac%digitsPerWord]
}

// appendDecimal appends precision, frac and the digit groups of d.
func appendDecimal(dst []byte, d Decimal) ([]byte, error) {
	if d.precision == 0 {
		return dst, fmt.Errorf("tidbcodec: zero Decimal; build decimals with NewDecimal")
	}
	neg, intDigits, fracDigits, err := splitDecimalText(d.text)
	if err != nil {
		return dst, err
	}
	precision, frac := int(d.precision), int(d.frac)
	intDigits = strings.Repeat("0", precision-frac-len(intDigits)) + intDigits
	dst = append(dst, d.precision, d.frac)
	start := len(dst)
	lead := len(intDigits) % digitsPerWord
	dst = appendDigitGroup(dst, intDigits[:lead])
	for i := lead; i < len(intDigits); i += digitsPerWord {
		dst = appendDigitGroup(dst, intDigits[i:i+digitsPerWord])
	}
	for i := 0; i < frac; i += digitsPerWord {
		dst = appendDigitGroup(dst, fracDigits[i:min(i+digitsPerWord, frac)])
	}
	if neg {
		for i := start; i < len(dst); i++ {
			dst[i] = ^dst[i]
		}
	}
	dst[start] ^= decimalSignFlipBit
	return dst, nil
}

// appendDigitGroup writes up to 9 digits big-endian in as few bytes as the
// digit count needs.
func appendDigitGroup(dst []byte, digits string) []byte {
	var v uint32
	for i := 0; i < len(digits); i++ {
		v = v*10 + uint32(digits[i]-'0')
	}
	for i := decimalGroupBytes[len(digits)] - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

var powersOf10 = [digitsPerWord + 1]uint32{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// decodeDecimal reads what appendDecimal wrote; b must be exactly one value.
// Offsets in errors are relative to b.
func decodeDecimal(b []byte) (Decimal, error) {
	const what = "decimal"
	if len(b) < 3 {
		return Decimal{}, malformed(what, 0, "need precision, scale and digits, have %d bytes", len(b))
	}
	precision, frac := int(b[0]), int(b[1])
	if err := checkDecimalShape(precision, frac); err != nil {
		return Decimal{}, malformed(what, 0, "%s", err)
	}
	bin := b[2:]
	if size := decimalBinSize(precision, frac); len(bin) != size {
		return Decimal{}, malformed(what, 2, "DECIMAL(%d,%d) takes %d bytes, have %d", precision, frac, size, len(bin))
	}
	neg := bin[0]&decimalSignFlipBit == 0
	var mask byte
	if neg {
		mask = 0xFF
	}
	off := 0
	readGroup := func(digits int, out *strings.Builder) error {
		if digits == 0 {
			return nil
		}
		var v uint32
		for i := range decimalGroupBytes[digits] {
			c := bin[off+i] ^ mask
			if off+i == 0 {
				c ^= decimalSignFlipBit
			}
			v = v<<8 | uint32(c)
		}
		if v >= powersOf10[digits] {
			return malformed(what, 2+off, "digit group %d does not fit %d digits", v, digits)
		}
		var text [digitsPerWord]byte
		for i := digits - 1; i >= 0; i-- {
			text[i] = byte('0' + v%10)
			v /= 10
		}
		out.Write(text[:digits])
		off += decimalGroupBytes[digits]
		return nil
	}
	var intB, fracB strings.Builder
	intDigits := precision - frac
	if err := readGroup(intDigits%digitsPerWord, &intB); err != nil {
		return Decimal{}, err
	}
	for range intDigits / digitsPerWord {
		if err := readGroup(digitsPerWord, &intB); err != nil {
			return Decimal{}, err
		}
	}
	for i := 0; i < frac; i += digitsPerWord {
		if err := readGroup(min(digitsPerWord, frac-i), &fracB); err != nil {
			return Decimal{}, err
		}
	}
	ints := strings.TrimLeft(intB.String(), "0")
	if neg && ints == "" && frac == 0 {
		// TiDB reads these bytes as plain zero but never writes them: its
		// encoder gives a zero without fraction digits the positive sign.
		return Decimal{}, malformed(what, 2, "negative zero without fraction digits")
	}
	return Decimal{text: formatDecimal(neg, ints, fracB.String()), precision: uint8(precision), frac: uint8(frac)}, nil
}
