package tidbcodec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, `[]`, `0`, `-0`, `-1.5e+10`, `1E-2`, `"a"`, `"\u00e9\n\"\\\/"`, `true`, `false`, `null`,
		`{"id":42,"name":{"O":"T","L":"t"},"cols":[{"id":1,"v":null},[],[1,2.0,-3e4]],"x":"\x7f\xff"}`,
		"\t\r\n[1 , 2 ]\n", `"` + "\xc3\x28" + `"`, // invalid UTF-8 in a string: encoding/json takes it too
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{a:1}`, `[1,]`, `[,1]`, `[1 2]`, `01`, `-`, `1.`, `.5`,
		`1e`, `1e+`, `+1`, `0x1`, `"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", `tru`, `nul`, `truex`, `{} {}`, `1 2`,
		`[1]]`, `{"a":1}}`, "\u00a0{}", `NaN`, `Infinity`,
	} {
		require.Equal(t, json.Valid([]byte(s)), ValidJSON([]byte(s)), "%q", s)
	}
	// encoding/json's nesting bound: 10,000 levels, not one more.
	for _, n := range []int{maxJSONDepth, maxJSONDepth + 1} {
		arr := strings.Repeat("[", n) + strings.Repeat("]", n)
		obj := strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
		require.Equal(t, json.Valid([]byte(arr)), ValidJSON([]byte(arr)), "%d arrays", n)
		require.Equal(t, json.Valid([]byte(obj)), ValidJSON([]byte(obj)), "%d objects", n)
		require.Equal(t, n == maxJSONDepth, ValidJSON([]byte(arr)))
	}
}

// FuzzValidJSON: ValidJSON says what encoding/json.Valid says, on anything.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"id":42,"cols":[{"id":1}]}`, `[1,-2.5e3,"\u00e9",true,null]`, `{"a":"\"}","b":[]}`, `-0.0E+1`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if want, got := json.Valid(b), ValidJSON(b); want != got {
			t.Fatalf("%q: encoding/json says valid=%v, ValidJSON %v", b, want, got)
		}
	})
}

// benchTableInfo is a TableInfo of three columns as TiDB writes it.
func benchTableInfo(b *testing.B) []byte {
	ti, err := NewTableBuilder(10, "t").IntPrimaryKey("id", IntType(TypeLonglong, false)).Column("v", VarcharType(10)).
		Column("w", VarcharType(20)).Build()
	require.NoError(b, err)
	raw, err := json.Marshal(ti)
	require.NoError(b, err)
	return raw
}

// BenchmarkTableInfoID: reading a TableInfo's id, as a snapshot's table
// ids are read (pool.SnapshotTableIDs).
func BenchmarkTableInfoID(b *testing.B) {
	raw := benchTableInfo(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if id, err := TableInfoID(raw); err != nil || id != 10 {
			b.Fatal(id, err)
		}
	}
}

func BenchmarkValidJSON(b *testing.B) {
	raw := benchTableInfo(b)
	for _, c := range []struct {
		name  string
		valid func([]byte) bool
	}{{"encoding/json", json.Valid}, {"ValidJSON", ValidJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if !c.valid(raw) {
					b.Fatal("not valid")
				}
			}
		})
	}
}
