package schema

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTableHeadOf: on valid JSON the walked head of a TableInfo is the
// decoded one (id, name, partition), or both fail; on anything it never
// panics.
func FuzzTableHeadOf(f *testing.F) {
	for _, s := range []string{
		`{"id":42,"name":{"O":"T","L":"t"},"cols":[{"id":1,"name":{"O":"c","L":"c"}}],"partition":null}`,
		`{"ID":1,"id":2,"Name":{"O":"a","L":"a"},"partition":{"definitions":[{"id":3}]}}`,
		`{"id":"7"}`, `{"id":1e2}`, `{"name":"x"}`, `{"i\u0064":5}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := tableHeadOf(b)
		if !json.Valid(b) {
			return
		}
		want, wantErr := parseTableHead(b)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: walked error %v, decoded error %v", b, gotErr, wantErr)
		}
		if gotErr == nil {
			require.Equal(t, want, got, "%q", b)
		}
	})
}
