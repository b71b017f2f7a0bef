package truth

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readAll decodes every line, cloning rows since the Reader reuses them.
func readAll(t testing.TB, name, in string) []Line {
	t.Helper()
	r := NewReader(strings.NewReader(in), name)
	var out []Line
	for {
		l, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		c := *l
		c.Row = l.Row.Clone()
		out = append(out, c)
	}
}

func randomRows(n int) []Row {
	rng := rand.New(rand.NewPCG(7, 8))
	rows := make([]Row, n)
	for i := range rows {
		key := make([]byte, 1+rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		r := Row{
			Tenant:   rng.Uint64(),
			TableID:  rng.Int64(),
			CommitTs: 1<<53 + rng.Uint64N(1<<62), // above 2^53: float64 would round these
			StartTs:  rng.Uint64(),
			Op:       OpPut,
			Key:      key,
			Value:    []byte{},
		}
		switch i % 4 {
		case 0:
			r.Op = OpDelete
		case 1:
			r.Value = bytes.Repeat([]byte{byte(i)}, rng.IntN(100))
			r.SchemaVersion = rng.Int64()
		}
		rows[i] = r
	}
	rows[0].CommitTs, rows[0].StartTs, rows[0].Tenant = math.MaxUint64, math.MaxUint64-1, math.MaxUint64
	rows[1].TableID, rows[1].SchemaVersion = math.MaxInt64, math.MaxInt64
	return rows
}

func TestRoundTrip(t *testing.T) {
	rows := randomRows(2000)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var want []Line
	for i, r := range rows {
		require.NoError(t, w.WriteRow(r))
		want = append(want, Line{Num: int64(len(want) + 1), Kind: KindRow, Row: r})
		if i%11 == 0 {
			d := DDL{Tenant: r.Tenant, CommitTs: r.CommitTs, DBID: 2, TableID: r.TableID, Action: "add_column", SchemaVersion: int64(i)}
			require.NoError(t, w.WriteDDL(d))
			want = append(want, Line{Num: int64(len(want) + 1), Kind: KindDDL, DDL: d})
		}
		if i%7 == 0 {
			ts := r.CommitTs + 1
			require.NoError(t, w.WriteResolved(Resolved{Ts: ts}))
			want = append(want, Line{Num: int64(len(want) + 1), Kind: KindResolved, Resolved: Resolved{Ts: ts}})
		}
	}
	require.NoError(t, w.WriteEnd(End{ResolvedTs: math.MaxUint64}))
	want = append(want, Line{Num: int64(len(want) + 1), Kind: KindEnd, End: End{ResolvedTs: math.MaxUint64}})
	require.NoError(t, w.Flush())

	got := readAll(t, "rt.jsonl", buf.String())
	require.Len(t, got, len(want))
	for i := range want {
		g, w := got[i], want[i]
		// Only the field named by Kind is meaningful; compare that.
		require.Equal(t, w.Num, g.Num)
		require.Equal(t, w.Kind, g.Kind, "line %d", w.Num)
		switch w.Kind {
		case KindRow:
			if len(w.Row.Value) == 0 {
				w.Row.Value = g.Row.Value // nil vs empty
			}
			require.Equal(t, w.Row, g.Row, "line %d", w.Num)
		case KindResolved:
			require.Equal(t, w.Resolved, g.Resolved)
		case KindEnd:
			require.Equal(t, w.End, g.End)
		case KindDDL:
			require.Equal(t, w.DDL, g.DDL)
		}
	}
}

func TestWriterFormat(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	require.NoError(t, w.WriteRow(Row{Tenant: 1, TableID: 101, CommitTs: 9007199254740993, StartTs: 7,
		Op: OpPut, Key: []byte{0x74, 0x80}, Value: []byte{0xab}, SchemaVersion: 3}))
	require.NoError(t, w.WriteRow(Row{Tenant: 1, TableID: 101, CommitTs: 9, StartTs: 7, Op: OpDelete, Key: []byte{1}}))
	require.NoError(t, w.WriteResolved(Resolved{Ts: 10}))
	require.NoError(t, w.WriteEnd(End{ResolvedTs: 11}))
	require.NoError(t, w.WriteDDL(DDL{Tenant: 1, CommitTs: 12, DBID: 2, TableID: 101, Action: "a\"b\\c\n", SchemaVersion: 4}))
	require.Error(t, w.WriteDDL(DDL{Tenant: 1}), "a ddl needs an action")
	require.Empty(t, buf.String(), "buffered until Flush")
	require.NoError(t, w.Flush())
	require.Equal(t, `{"type":"row","tenant":1,"table_id":101,"commit_ts":9007199254740993,"start_ts":7,"op":"put","key":"7480","value":"ab","schema_version":3}
{"type":"row","tenant":1,"table_id":101,"commit_ts":9,"start_ts":7,"op":"delete","key":"01","value":""}
{"type":"resolved","ts":10}
{"type":"end","resolved_ts":11}
{"type":"ddl","tenant":1,"commit_ts":12,"db_id":2,"table_id":101,"action":"a\"b\\c\u000a","schema_version":4}
`, buf.String())
	l := readAll(t, "f", buf.String())[4]
	require.Equal(t, KindDDL, l.Kind)
	require.Equal(t, "a\"b\\c\n", l.DDL.Action, "escapes round-trip")
}

func TestWriterRefusesBadRows(t *testing.T) {
	good := Row{TableID: 1, Op: OpPut, Key: []byte{1}}
	for name, mut := range map[string]func(*Row){
		"unknown op":          func(r *Row) { r.Op = "upsert" },
		"empty key":           func(r *Row) { r.Key = nil },
		"delete with value":   func(r *Row) { r.Op, r.Value = OpDelete, []byte{1} },
		"negative table":      func(r *Row) { r.TableID = -1 },
		"negative schema ver": func(r *Row) { r.SchemaVersion = -2 },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			r := good
			mut(&r)
			require.Error(t, w.WriteRow(r))
			require.NoError(t, w.WriteRow(good), "a refused row does not poison the writer")
			require.NoError(t, w.Flush())
			require.Len(t, readAll(t, "w", buf.String()), 1)
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriterErrorIsSticky(t *testing.T) {
	w := NewWriter(failWriter{})
	require.NoError(t, w.WriteResolved(Resolved{Ts: 1}))
	require.ErrorIs(t, w.Flush(), io.ErrClosedPipe)
	require.ErrorIs(t, w.WriteResolved(Resolved{Ts: 2}), io.ErrClosedPipe)
}

// TestReaderAcceptsValidVariants covers what other writers may legitimately
// produce: any field order, no "type" on rows, whitespace, escapes, unknown
// fields, unknown line types, blank lines, CRLF and no final newline.
func TestReaderAcceptsValidVariants(t *testing.T) {
	in := "\n" +
		`{"value":"0A","key":"74","op":"put","start_ts":1,"commit_ts":18446744073709551615,"table_id":5,"tenant":2}` + "\r\n" +
		`  { "type" : "row", "tenant":2,"table_id":5,"commit_ts":3,"start_ts":1,"op":"de\u006cete","key":"\u0037\u0034","value":"","future":{"a":[1,2.5e3,true,null,"x\"y"]}} ` + "\n" +
		`{"type":"checkpoint","table_id":5,"query":"ALTER TABLE t ADD c INT","job":{"id":7}}` + "\n" +
		"   \n" +
		`{"type":"resolved","ts":9007199254740993,"extra":"ignored"}` + "\n" +
		`{"resolved_ts":9007199254740995,"type":"end"}`
	got := readAll(t, "v.jsonl", in)
	require.Len(t, got, 5)

	require.Equal(t, int64(2), got[0].Num)
	require.Equal(t, KindRow, got[0].Kind)
	require.Equal(t, Row{Tenant: 2, TableID: 5, CommitTs: math.MaxUint64, StartTs: 1, Op: OpPut,
		Key: []byte{0x74}, Value: []byte{0x0a}}, got[0].Row)

	require.Equal(t, int64(3), got[1].Num)
	require.Equal(t, OpDelete, got[1].Row.Op)
	require.Equal(t, []byte{0x74}, got[1].Row.Key)
	require.Empty(t, got[1].Row.Value)

	require.Equal(t, KindOther, got[2].Kind)
	require.Equal(t, "checkpoint", got[2].Type)

	require.Equal(t, int64(6), got[3].Num)
	require.Equal(t, Resolved{Ts: 9007199254740993}, got[3].Resolved)
	require.Equal(t, int64(7), got[4].Num)
	require.Equal(t, End{ResolvedTs: 9007199254740995}, got[4].End)
}

// TestDDLOptionalFields: names, the truncated table, the job and the
// TableInfo survive a round trip, and lines without them read as before.
func TestDDLOptionalFields(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	full := DDL{Tenant: 1, CommitTs: 12, DBID: 2, TableID: 105, Action: "truncate_table", SchemaVersion: 4,
		DBName: "db1", TableName: "sbtest101", OldTableID: 101, JobID: 104, Query: "TRUNCATE TABLE `db1`.`sbtest101`",
		TableInfo: []byte(`{"id":105,"name":{"O":"sbtest101","L":"sbtest101"}}`)}
	require.NoError(t, w.WriteDDL(full))
	require.NoError(t, w.WriteDDL(DDL{Tenant: 1, CommitTs: 13, DBID: 2, TableID: 105, Action: "alter_table", SchemaVersion: 5}))
	require.Error(t, w.WriteDDL(DDL{Tenant: 1, Action: "x", OldTableID: -1}))
	require.NoError(t, w.Flush())
	lines := readAll(t, "f", buf.String())
	require.Equal(t, full, lines[0].DDL)
	require.Equal(t, DDL{Tenant: 1, CommitTs: 13, DBID: 2, TableID: 105, Action: "alter_table", SchemaVersion: 5}, lines[1].DDL)
}
