package truth

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReader feeds arbitrary input to the Reader: it must never panic, every
// failure must be a LineError or EOF, and every row it accepts must survive
// a Writer round trip unchanged.
func FuzzReader(f *testing.F) {
	f.Add([]byte(goodRow + "\n" + `{"type":"resolved","ts":5}` + "\n" + `{"type":"end","resolved_ts":6}`))
	f.Add([]byte(`{"type":"other","x":[{"y":"\ud83d\ude00"}]}`))
	f.Add([]byte(`{"type":"ddl","tenant":1,"commit_ts":12,"db_id":2,"table_id":101,"action":"add_column","schema_version":4}`))
	f.Add([]byte(`{"op":"delete","key":"\u0041b","value":"","tenant":0,"table_id":0,"commit_ts":0,"start_ts":0,"schema_version":9}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), "fuzz")
		for range 1000 {
			l, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var le *LineError
				require.True(t, errors.As(err, &le), "error %v is not a LineError", err)
				continue
			}
			if l.Kind != KindRow {
				continue
			}
			var buf bytes.Buffer
			w := NewWriter(&buf)
			require.NoError(t, w.WriteRow(l.Row))
			require.NoError(t, w.Flush())
			back, err := NewReader(&buf, "again").Next()
			require.NoError(t, err)
			require.Equal(t, l.Row.Clone(), back.Row.Clone())
		}
	})
}
