package tidbcodec

import "math"

// Field types as TiDB's DDL builds them for a column definition without
// explicit display width, charset or collation (utf8mb4_bin strings), so a
// simulated table looks like one made by CREATE TABLE.

// Default display widths TiDB gives integer types (signed, unsigned).
var intDisplayWidth = map[byte][2]int{
	TypeTiny:     {4, 3},
	TypeShort:    {6, 5},
	TypeInt24:    {9, 8},
	TypeLong:     {11, 10},
	TypeLonglong: {20, 20},
}

// numberType has the binary charset but, unlike binary strings and
// temporal types, no BinaryFlag: that is how TiDB's DDL leaves numbers.
func numberType(tp byte, flen, decimal int, flag uint) FieldType {
	return FieldType{Tp: tp, Flag: flag, Flen: flen, Decimal: decimal, Charset: CharsetBin, Collate: CollationBin}
}

func binaryType(tp byte, flen, decimal int) FieldType {
	return FieldType{Tp: tp, Flag: BinaryFlag, Flen: flen, Decimal: decimal, Charset: CharsetBin, Collate: CollationBin}
}

func textType(tp byte, flen int) FieldType {
	return FieldType{Tp: tp, Flen: flen, Charset: CharsetUTF8MB4, Collate: CollationUTF8MB4Bin}
}

// IntType is TINYINT, SMALLINT, MEDIUMINT, INT or BIGINT (tp), optionally
// UNSIGNED.
func IntType(tp byte, unsigned bool) FieldType {
	w := intDisplayWidth[tp]
	if unsigned {
		return numberType(tp, w[1], 0, UnsignedFlag)
	}
	return numberType(tp, w[0], 0, 0)
}

// DecimalType is DECIMAL(precision, frac).
func DecimalType(precision, frac int) FieldType {
	return numberType(TypeNewDecimal, precision, frac, 0)
}

// FloatType is FLOAT.
func FloatType() FieldType { return numberType(TypeFloat, 12, UnspecifiedLength, 0) }

// DoubleType is DOUBLE.
func DoubleType() FieldType { return numberType(TypeDouble, 22, UnspecifiedLength, 0) }

// VarcharType is VARCHAR(n) in utf8mb4_bin.
func VarcharType(n int) FieldType { return textType(TypeVarchar, n) }

// CharType is CHAR(n) in utf8mb4_bin.
func CharType(n int) FieldType { return textType(TypeString, n) }

// TextType is TEXT in utf8mb4_bin. (TiDB's DDL sets no BlobFlag.)
func TextType() FieldType { return textType(TypeBlob, 65535) }

// VarbinaryType is VARBINARY(n).
func VarbinaryType(n int) FieldType { return binaryType(TypeVarchar, n, 0) }

// BinaryType is BINARY(n).
func BinaryType(n int) FieldType { return binaryType(TypeString, n, 0) }

// BlobType is BLOB.
func BlobType() FieldType { return binaryType(TypeBlob, 65535, 0) }

// DateType is DATE.
func DateType() FieldType { return binaryType(TypeDate, 10, 0) }

// DatetimeType is DATETIME(fsp).
func DatetimeType(fsp int) FieldType { return binaryType(TypeDatetime, timeFlen(19, fsp), fsp) }

// TimestampType is TIMESTAMP(fsp).
func TimestampType(fsp int) FieldType { return binaryType(TypeTimestamp, timeFlen(19, fsp), fsp) }

// TimeType is TIME(fsp).
func TimeType(fsp int) FieldType { return binaryType(TypeDuration, timeFlen(10, fsp), fsp) }

func timeFlen(base, fsp int) int {
	if fsp > 0 {
		return base + 1 + fsp
	}
	return base
}

// YearType is YEAR.
func YearType() FieldType { return numberType(TypeYear, 4, 0, UnsignedFlag|ZerofillFlag) }

// BitType is BIT(n).
func BitType(n int) FieldType { return numberType(TypeBit, n, 0, UnsignedFlag) }

// JSONType is JSON.
func JSONType() FieldType { return binaryType(TypeJSON, math.MaxUint32, 0) }

// EnumType is ENUM(elems...) in utf8mb4_bin.
func EnumType(elems ...string) FieldType {
	ft := textType(TypeEnum, maxLen(elems))
	ft.Elems = elems
	return ft
}

// SetType is SET(elems...) in utf8mb4_bin.
func SetType(elems ...string) FieldType {
	ft := textType(TypeSet, max(len(elems)-1, 0)+sumLen(elems))
	ft.Elems = elems
	return ft
}

func maxLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}

func sumLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	return n
}
