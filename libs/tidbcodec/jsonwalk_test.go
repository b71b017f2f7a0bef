package tidbcodec

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func walked(b string) (map[string]string, bool) {
	m := map[string]string{}
	ok := WalkObject([]byte(b), func(k, v []byte) { m[string(k)] = string(v) })
	return m, ok
}

func TestWalkObject(t *testing.T) {
	m, ok := walked(` { "id" : 42 , "name":{"O":"T","L":"t"},"cols":[{"id":1},"]}"], "s":"a\"}b" ,"n":null } `)
	require.True(t, ok)
	require.Equal(t, map[string]string{"id": "42", "name": `{"O":"T","L":"t"}`, "cols": `[{"id":1},"]}"]`, "s": `"a\"}b"`, "n": "null"}, m)
	for _, bad := range []string{``, `[1]`, `{`, `{"id":1`, `{"id":}`, `{"id" 1}`, `{"i\u0064":1}`, "{\"\xc3\xa9\":1}", `{"a":1}}`, `{"a":[1}`, `{"a":"x}`} {
		_, ok := walked(bad)
		require.False(t, ok, bad)
	}
	_, ok = walked(`{}`)
	require.True(t, ok)
}

func TestJSONInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "7": 7, "-12": -12, "9223372036854775807": 1<<63 - 1} {
		n, ok := JSONInt([]byte(in))
		require.True(t, ok, in)
		require.Equal(t, want, n, in)
	}
	for _, in := range []string{"", "-", "-0", "01", "+1", "1.0", "1e3", `"1"`, "9223372036854775808", "null"} {
		_, ok := JSONInt([]byte(in))
		require.False(t, ok, in)
	}
}

// FuzzWalkObject: the walk takes only valid JSON, and then gives every
// key's last value as encoding/json reads it; on anything it never panics.
func FuzzWalkObject(f *testing.F) {
	for _, s := range []string{`{"id":42,"cols":[{"id":1}]}`, `{"a":"\"}","b":[1,{"c":"]"}]}`, `{"x":1,"x":2}`, `{}`, ` {"a" : true } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string][]byte{}
		ok := WalkObject(b, func(k, v []byte) { got[string(k)] = v })
		if ok && !json.Valid(b) {
			t.Fatalf("%q: walked, but it is not JSON", b)
		}
		if !ok {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: walked, the decoder fails: %v", b, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: walked %d keys, the decoder %d", b, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("%q: key %q walked as %q, decoded as %q", b, k, got[k], v)
			}
		}
	})
}

func TestTopLevelID(t *testing.T) {
	for _, c := range []struct {
		in string
		id int64
		ok bool
	}{
		{`{"id":42,"name":{"O":"t","L":"t"},"cols":[{"id":1},{"id":2}]}`, 42, true},
		{` { "cols" : [ {"id":7} ], "id" : 9 } `, 9, true},
		{`{"id":1,"ID":2}`, 2, true}, // the last wins, case-insensitively, as encoding/json
		{`{"name":"a\"id\":3","id":4}`, 4, true},
		{`{}`, 0, true},
		{`{"x":1}`, 0, true},
		{`{"id":"5"}`, 0, false},
		{`{"id":1.5}`, 0, false},
		{`{"id":-0}`, 0, false},
		{`{"i\u0064":6}`, 0, false},
		{`{"id":}`, 0, false},
		{`{"id":1`, 0, false},
		{`[1]`, 0, false},
		{``, 0, false},
	} {
		id, ok := topLevelID([]byte(c.in))
		require.Equal(t, c.ok, ok, c.in)
		if ok {
			require.Equal(t, c.id, id, c.in)
		}
	}
}

// FuzzTopLevelID: whenever the scan takes an id from valid JSON, the JSON
// decoder reads the same id; it never panics on anything.
func FuzzTopLevelID(f *testing.F) {
	for _, s := range []string{`{"id":42,"cols":[{"id":1}]}`, `{"ID":1,"id":2}`, `{"a":"\"}","id":3}`, `{"id":-7}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := topLevelID(b)
		if !ok || !json.Valid(b) {
			return
		}
		var ti struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(b, &ti); err != nil {
			t.Fatalf("%q: scanned id %d, the decoder fails: %v", b, id, err)
		}
		if ti.ID != id {
			t.Fatalf("%q: scanned id %d, the decoder reads %d", b, id, ti.ID)
		}
	})
}
