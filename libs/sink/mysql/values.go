package mysqlsink

import (
	"fmt"

	"github.com/tistream/tistream/client"
)

// sqlArg turns a decoded column value into an argument of the MySQL
// driver: numbers and bytes as they are, decimals, times and durations as
// the text MySQL parses. The client decodes an empty binary value as an
// empty non-nil slice (the driver would send a nil one as NULL).
func sqlArg(col client.Column) (any, error) {
	v, ok := client.PlainValue(col)
	if !ok {
		return nil, fmt.Errorf("column %s: JSON values are not supported by this sink yet", col.Name)
	}
	return v, nil
}
