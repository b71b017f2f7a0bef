package tidbcodec

// MySQL column type codes (FieldType.Tp), as TiDB's parser/mysql defines
// them. They are the wire protocol's codes, so they also appear in TiDB's
// schema JSON.
const (
	TypeUnspecified byte = 0
	TypeTiny        byte = 1 // TINYINT
	TypeShort       byte = 2 // SMALLINT
	TypeLong        byte = 3 // INT
	TypeFloat       byte = 4
	TypeDouble      byte = 5
	TypeNull        byte = 6
	TypeTimestamp   byte = 7
	TypeLonglong    byte = 8 // BIGINT
	TypeInt24       byte = 9 // MEDIUMINT
	TypeDate        byte = 10
	TypeDuration    byte = 11 // TIME
	TypeDatetime    byte = 12
	TypeYear        byte = 13
	TypeNewDate     byte = 14
	TypeVarchar     byte = 15
	TypeBit         byte = 16
	TypeJSON        byte = 0xf5
	TypeNewDecimal  byte = 0xf6
	TypeEnum        byte = 0xf7
	TypeSet         byte = 0xf8
	TypeTinyBlob    byte = 0xf9
	TypeMediumBlob  byte = 0xfa
	TypeLongBlob    byte = 0xfb
	TypeBlob        byte = 0xfc
	TypeVarString   byte = 0xfd
	TypeString      byte = 0xfe // CHAR and BINARY
	TypeGeometry    byte = 0xff

	TypeTiDBVectorFloat32 byte = 0xe1
)

// Column flags (FieldType.Flag) that matter to decoding or to the schema.
const (
	NotNullFlag        uint = 1 << 0
	PriKeyFlag         uint = 1 << 1
	UniqueKeyFlag      uint = 1 << 2
	MultipleKeyFlag    uint = 1 << 3
	BlobFlag           uint = 1 << 4
	UnsignedFlag       uint = 1 << 5
	ZerofillFlag       uint = 1 << 6
	BinaryFlag         uint = 1 << 7
	EnumFlag           uint = 1 << 8
	AutoIncrementFlag  uint = 1 << 9
	TimestampFlag      uint = 1 << 10
	SetFlag            uint = 1 << 11
	NoDefaultValueFlag uint = 1 << 12
	OnUpdateNowFlag    uint = 1 << 13
)

// UnspecifiedLength is TiDB's "no length given" for Flen and Decimal.
const UnspecifiedLength = -1

// Charsets and collations TiDB uses by default and for binary strings.
const (
	CharsetBin          = "binary"
	CollationBin        = "binary"
	CharsetUTF8MB4      = "utf8mb4"
	CollationUTF8MB4Bin = "utf8mb4_bin"
)
