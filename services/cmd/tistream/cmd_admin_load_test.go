package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// admin tasks shows each range's reported load, dashes without a report.
func TestAdminTasksLoadColumns(t *testing.T) {
	var out bytes.Buffer
	printAdmin(&out, &metav1.ListTasksResponse{Ranges: []*metav1.RangeStatus{
		{Task: &metav1.RangeTask{RangeId: 1, Owner: "s1"}, Load: &metav1.RangeLoad{RowsPerSec: 1234.4, BytesPerSec: 2048,
			CpuShare: 0.256, MemoryBytes: 300 << 20, PoolBytesPerSec: 512}},
		{Task: &metav1.RangeTask{RangeId: 2}},
	}})
	lines := strings.Split(out.String(), "\n")
	require.Equal(t, []string{"ROWS/S", "BYTES/S", "CPU", "MEMORY", "POOL", "B/S"}, strings.Fields(lines[0])[9:])
	require.Equal(t, []string{"1234", "2.0Ki", "0.26", "300.0Mi", "512"}, strings.Fields(lines[1])[9:])
	require.Equal(t, []string{"-", "-", "-", "-", "-"}, strings.Fields(lines[2])[9:])
}
