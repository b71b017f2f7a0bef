package storeline

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	lines := []*Line{
		{T: TypeHello, Cluster: 7, Tenant: 1, Producer: "test"},
		{T: TypeSchema, Schema: &Schema{Ts: 5, SchemaVersion: 3, Objects: []Object{{Kind: "db", DBID: 2, Info: `{"id":2,"db_name":{"O":"a<b>&","L":"a"}}`}}}},
		{T: TypeStart, Store: 1, Region: &Region{ID: 2, Start: nil, End: []byte("t\x80"), Version: 1, ConfVer: 1}, Term: 6, Reason: ReasonBootstrap},
		{T: TypeRows, Store: 1, RegionID: 2, Rows: []Row{{Type: RowPrewrite, Op: OpPut, StartTs: 10, Key: []byte{0, 0xff}, Value: []byte("v")},
			{Type: RowCommit, Op: OpPut, StartTs: 10, CommitTs: 12, Key: []byte{0, 0xff}}}},
		{T: TypeResolved, Store: 1, Ts: 11, Regions: []uint64{2}},
		{T: TypeEnd, Store: 1, RegionID: 2, Resolved: 11},
		{T: TypeCut, Store: 1, MaxTs: 20, UnixMs: 1},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	for i, want := range lines {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if got.T != want.T {
			t.Fatalf("line %d: type %q, want %q", i, got.T, want.T)
		}
	}
	got := lines[1].Schema.Objects[0].Info
	if got != `{"id":2,"db_name":{"O":"a<b>&","L":"a"}}` {
		t.Fatalf("schema info changed: %s", got)
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("after the last line: %v, want EOF", err)
	}
}

func TestCheckRejects(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"t":"nope"}`, "unknown line type"},
		{`{"t":"start","store":1,"region":{"id":2,"version":1,"conf_ver":1},"term":6,"reason":"split"}`, "without predecessors"},
		{`{"t":"rows","store":1,"region_id":2,"rows":[{"type":"commit","op":"put","start_ts":5,"commit_ts":5,"key":"AA=="}]}`, "commit_ts 5 <= start_ts 5"},
		{`{"t":"rows","store":1,"region_id":2,"rows":[{"type":"prewrite","op":"lock","start_ts":5,"key":"AA=="}]}`, `op "lock"`},
		{`{"t":"cut","store":1}`, "max_ts"},
		{`{"t":"rows","store":1`, "store lines:1"},
	} {
		_, err := NewDecoder(strings.NewReader(tc.line + "\n")).Next()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.line, err, tc.want)
		}
	}
}
