package pull

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

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
