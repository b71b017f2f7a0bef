package truth

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

const goodRow = `{"tenant":1,"table_id":5,"commit_ts":20,"start_ts":10,"op":"put","key":"7480","value":"01"}`

// withField returns goodRow with one field's raw JSON value replaced, or the
// field dropped when raw is "".
func withField(field, raw string) string {
	parts := strings.Split(strings.Trim(goodRow, "{}"), ",")
	var out []string
	for _, p := range parts {
		if strings.HasPrefix(p, `"`+field+`":`) {
			if raw == "" {
				continue
			}
			p = `"` + field + `":` + raw
		}
		out = append(out, p)
	}
	return "{" + strings.Join(out, ",") + "}"
}

func TestReaderRejectsMalformedLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		line  string
		field string
		msg   string // the whole message after "bad.jsonl:2: "
	}{
		{"missing tenant", withField("tenant", ""), "tenant", `missing "tenant"`},
		{"missing key", withField("key", ""), "key", `missing "key"`},
		{"missing value", withField("value", ""), "value", `missing "value"`},
		{"missing ts", `{"type":"resolved"}`, "ts", `missing "ts"`},
		{"missing resolved_ts", `{"type":"end","ts":5}`, "resolved_ts", `missing "resolved_ts"`},
		{"negative commit_ts", withField("commit_ts", "-5"), "commit_ts", `bad "commit_ts": negative number -5`},
		{"negative tenant", withField("tenant", "-1"), "tenant", `bad "tenant": negative number -1`},
		{"negative table_id", withField("table_id", "-3"), "table_id", `bad "table_id": negative number -3`},
		{"fraction", withField("start_ts", "1.5"), "start_ts", `bad "start_ts": not an integer: 1.5`},
		{"exponent", withField("start_ts", "1e3"), "start_ts", `bad "start_ts": not an integer: 1e3`},
		{"uint64 overflow", withField("commit_ts", "18446744073709551616"), "commit_ts",
			`bad "commit_ts": out of range: 18446744073709551616`},
		{"int64 overflow", withField("table_id", "9223372036854775808"), "table_id",
			`bad "table_id": out of range: 9223372036854775808`},
		{"quoted number", withField("commit_ts", `"20"`), "commit_ts", `bad "commit_ts": not a number`},
		{"null number", withField("tenant", "null"), "tenant", `bad "tenant": not a number`},
		{"odd hex", withField("key", `"748"`), "key", `bad "key": odd length hex (3 digits)`},
		{"bad hex char", withField("value", `"0g"`), "value", `bad "value": invalid hex character 'g' at offset 1`},
		{"hex not string", withField("key", "7480"), "key", `bad "key": not a string`},
		{"empty key", withField("key", `""`), "key", `bad "key": empty`},
		{"unknown op", withField("op", `"upsert"`), "op", `bad "op": unknown op "upsert" (want "put" or "delete")`},
		{"delete with value", withField("op", `"delete"`), "value", `bad "value": a delete carries no value`},
		{"negative schema_version", strings.TrimSuffix(goodRow, "}") + `,"schema_version":-1}`, "schema_version",
			`bad "schema_version": negative number -1`},
		{"duplicate field", strings.TrimSuffix(goodRow, "}") + `,"commit_ts":21}`, "commit_ts", `bad "commit_ts": duplicate field`},
		{"empty type", `{"type":""}`, "type", `bad "type": empty`},
		{"ddl without action", `{"type":"ddl","tenant":1,"commit_ts":2,"db_id":3,"table_id":4,"schema_version":5}`,
			"action", `missing "action"`},
		{"ddl negative version", `{"type":"ddl","tenant":1,"commit_ts":2,"db_id":3,"table_id":4,"schema_version":-5,"action":"x"}`,
			"schema_version", `bad "schema_version": negative number -5`},
		{"type not string", `{"type":1}`, "type", `bad "type": not a string`},
		{"not an object", `[1,2]`, "", `bad JSON at column 1: expected '{'`},
		{"truncated", goodRow[:40], "", `bad JSON at column 41: expected a field name`},
		{"unterminated string", `{"type":"ro`, "", `bad JSON at column 12: unterminated string`},
		{"trailing garbage", goodRow + "x", "", `bad JSON at column 92: data after the object`},
		{"bare word", `{"type":row}`, "", `bad JSON at column 9: expected a value`},
		{"bad escape", `{"type":"\x"}`, "", `bad JSON at column 10: bad escape`},
		{"leading zero", withField("tenant", "01"), "", `bad JSON at column 12: expected ',' or '}'`},
		{"nested too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "",
			`bad JSON at column 70: nested too deeply`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A good line first: the error must name line 2, and the reader
			// must go on to line 3 afterwards.
			r := NewReader(strings.NewReader(goodRow+"\n"+tc.line+"\n"+goodRow+"\n"), "bad.jsonl")
			_, err := r.Next()
			require.NoError(t, err)
			_, err = r.Next()
			require.ErrorIs(t, err, ErrMalformed)
			var le *LineError
			require.True(t, errors.As(err, &le))
			require.Equal(t, "bad.jsonl:2: "+tc.msg, err.Error())
			require.Equal(t, tc.field, le.Field)
			require.Equal(t, int64(2), le.Line)
			l, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, int64(3), l.Num)
			_, err = r.Next()
			require.Equal(t, io.EOF, err)
		})
	}
}

func TestReaderLongLines(t *testing.T) {
	val := strings.Repeat("ab", 3<<20) // longer than the 1 MiB read buffer
	line := withField("value", `"`+val+`"`)
	r := NewReader(strings.NewReader(line+"\n"+line), "long.jsonl")
	for i := 1; i <= 2; i++ {
		l, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, int64(i), l.Num)
		require.Len(t, l.Row.Value, 3<<20)
	}
	_, err := r.Next()
	require.Equal(t, io.EOF, err)

	r = NewReader(strings.NewReader(goodRow+"\n"+line+"\n"), "long.jsonl")
	r.SetMaxLineBytes(1 << 20)
	_, err = r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	require.EqualError(t, err, "long.jsonl:2: line longer than 1048576 bytes")
	_, err = r.Next()
	require.Error(t, err, "sticky: the rest of the input is not line-aligned")
}

func TestReaderIOError(t *testing.T) {
	in := io.MultiReader(strings.NewReader(goodRow+"\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	r := NewReader(in, "slow.jsonl")
	_, err := r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Contains(t, err.Error(), "read slow.jsonl")
	_, err = r.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}
