package mysqlsink

import (
	"fmt"

	"github.com/tistream/tistream/client"
)

// sqlArg turns a decoded column value into an argument of the MySQL
// driver: numbers and bytes as they are, decimals, times and durations as
// the text MySQL parses. An empty binary value may decode as a nil slice,
// which the driver would send as NULL: it goes as an empty one.
func sqlArg(col client.Column) (any, error) {
	v, ok := client.PlainValue(col)
	if !ok {
		return nil, fmt.Errorf("column %s: JSON values are not supported by this sink yet", col.Name)
	}
	if b, isBytes := v.([]byte); isBytes && b == nil {
		return []byte{}, nil
	}
	return v, nil
}
