package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/tidbcodec"
)

// BinaryJSON is a JSON column's value in TiDB's binary JSON form (a type
// code byte, then the value), as TiDB stores it; this package does not
// render it as text yet.
type BinaryJSON []byte

// isBinary: a string column of charset binary (BINARY, VARBINARY, BLOB).
func isBinary(c *tidbcodec.ColumnInfo) bool {
	return c.FieldType.Charset == tidbcodec.CharsetBin || c.FieldType.Flag&tidbcodec.BinaryFlag != 0
}

// goValue turns a decoded value into the Go value of its column's type.
func goValue(c *tidbcodec.ColumnInfo, v tidbcodec.Value) (any, error) {
	switch v.Kind {
	case tidbcodec.KindNull:
		return nil, nil
	case tidbcodec.KindInt64:
		return v.Int, nil
	case tidbcodec.KindUint64, tidbcodec.KindBit:
		return v.Uint, nil
	case tidbcodec.KindFloat32:
		return float32(v.Float), nil
	case tidbcodec.KindFloat64:
		return v.Float, nil
	case tidbcodec.KindBytes:
		if isBinary(c) {
			// Non-nil even when empty: an empty value is not NULL.
			return append([]byte{}, v.Bytes...), nil
		}
		return string(v.Bytes), nil
	case tidbcodec.KindDecimal:
		return v.Decimal, nil
	case tidbcodec.KindTime:
		return v.Time(), nil
	case tidbcodec.KindDuration:
		return time.Duration(v.Int), nil
	case tidbcodec.KindEnum:
		if v.Uint == 0 || v.Uint > uint64(len(c.FieldType.Elems)) {
			return "", nil // TiDB reads an index past the members as the empty value
		}
		return c.FieldType.Elems[v.Uint-1], nil
	case tidbcodec.KindSet:
		elems := c.FieldType.Elems
		if len(elems) < 64 && v.Uint>>len(elems) != 0 {
			return nil, fmt.Errorf("SET value %#x has bits past its %d members", v.Uint, len(elems))
		}
		var names []string
		for i, e := range elems {
			if i < 64 && v.Uint&(1<<i) != 0 {
				names = append(names, e)
			}
		}
		return strings.Join(names, ","), nil
	case tidbcodec.KindJSON:
		return BinaryJSON(append([]byte{}, v.Bytes...)), nil
	}
	return nil, fmt.Errorf("value of kind %s", v.Kind)
}

// originDefault is the value of a column the row does not hold (it was
// added after the row was written): its origin default, as TiDB reads it.
func originDefault(c *tidbcodec.ColumnInfo) (any, error) {
	raw := c.OriginDefaultValue
	if tidbcodec.IsNullJSON(raw) {
		if c.FieldType.Flag&tidbcodec.NotNullFlag != 0 && c.FieldType.Flag&tidbcodec.NoDefaultValueFlag == 0 {
			return zeroValue(c), nil
		}
		return nil, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		// Numbers may be stored unquoted.
		text = string(raw)
	}
	return parseDefault(c, text)
}

// zeroValue is MySQL's implicit default of a NOT NULL column without one.
func zeroValue(c *tidbcodec.ColumnInfo) any {
	v, err := parseDefault(c, "")
	if err != nil {
		return nil
	}
	return v
}

// parseDefault reads a default value's text as its column's Go value.
func parseDefault(c *tidbcodec.ColumnInfo, text string) (any, error) {
	ft := &c.FieldType
	unsigned := ft.Flag&tidbcodec.UnsignedFlag != 0
	num := text
	if num == "" {
		num = "0"
	}
	switch ft.Tp {
	case tidbcodec.TypeTiny, tidbcodec.TypeShort, tidbcodec.TypeInt24, tidbcodec.TypeLong, tidbcodec.TypeLonglong, tidbcodec.TypeYear:
		if unsigned && ft.Tp != tidbcodec.TypeYear {
			return strconv.ParseUint(num, 10, 64)
		}
		return strconv.ParseInt(num, 10, 64)
	case tidbcodec.TypeFloat:
		f, err := strconv.ParseFloat(num, 32)
		return float32(f), err
	case tidbcodec.TypeDouble:
		return strconv.ParseFloat(num, 64)
	case tidbcodec.TypeNewDecimal:
		return tidbcodec.NewDecimal(num, ft.Flen, max(ft.Decimal, 0))
	case tidbcodec.TypeBit:
		var u uint64
		for _, b := range []byte(text) { // TiDB keeps a BIT default as its bytes
			u = u<<8 | uint64(b)
		}
		return u, nil
	case tidbcodec.TypeDate, tidbcodec.TypeDatetime, tidbcodec.TypeTimestamp:
		return parseTime(text)
	case tidbcodec.TypeDuration:
		return parseDuration(text)
	case tidbcodec.TypeJSON:
		return nil, fmt.Errorf("a JSON default needs TiDB's binary JSON encoder")
	}
	if isBinary(c) {
		return []byte(text), nil
	}
	return text, nil
}

// parseTime reads "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" (the form TiDB stores
// defaults in); "" is the zero date.
func parseTime(s string) (tidbcodec.Time, error) {
	var t tidbcodec.Time
	if s == "" {
		return t, nil
	}
	date, clock, _ := strings.Cut(s, " ")
	n, err := fmt.Sscanf(date, "%d-%d-%d", &t.Year, &t.Month, &t.Day)
	if err != nil || n != 3 {
		return t, fmt.Errorf("default %q is not a date", s)
	}
	if clock != "" {
		whole, frac, _ := strings.Cut(clock, ".")
		if n, err := fmt.Sscanf(whole, "%d:%d:%d", &t.Hour, &t.Minute, &t.Second); err != nil || n != 3 {
			return t, fmt.Errorf("default %q is not a datetime", s)
		}
		if frac != "" {
			frac = (frac + "000000")[:6]
			us, err := strconv.Atoi(frac)
			if err != nil {
				return t, fmt.Errorf("default %q: fraction: %w", s, err)
			}
			t.Microsecond = us
		}
	}
	return t, nil
}

// parseDuration reads "[-]HH:MM:SS[.ffffff]".
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var h, m, sec int64
	if n, err := fmt.Sscanf(whole, "%d:%d:%d", &h, &m, &sec); err != nil || n != 3 {
		return 0, fmt.Errorf("default %q is not a time", s)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
	if frac != "" {
		us, err := strconv.Atoi((frac + "000000")[:6])
		if err != nil {
			return 0, fmt.Errorf("default %q: fraction: %w", s, err)
		}
		d += time.Duration(us) * time.Microsecond
	}
	if neg {
		d = -d
	}
	return d, nil
}

// PlainValue is a column's value as a plain scalar, the form SQL drivers
// and JSON take: nil, int64, uint64, float32, float64, string or []byte.
// DECIMAL, DATE/DATETIME/TIMESTAMP and TIME become the text MySQL writes
// for them (a DATE without its time part); JSON stays TiDB's binary form,
// []byte, and is reported by ok = false.
func PlainValue(c Column) (v any, ok bool) {
	switch x := c.Value.(type) {
	case tidbcodec.Decimal:
		return x.String(), true
	case tidbcodec.Time:
		if c.Info != nil && c.Info.FieldType.Tp == tidbcodec.TypeDate {
			return fmt.Sprintf("%04d-%02d-%02d", x.Year, x.Month, x.Day), true
		}
		return x.String(), true
	case time.Duration:
		return FormatDuration(x), true
	case BinaryJSON:
		return []byte(x), false
	}
	return c.Value, true
}

// FormatDuration is a TIME value as MySQL writes it: [-]HH:MM:SS.ffffff.
func FormatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	us := d / time.Microsecond
	return fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}
