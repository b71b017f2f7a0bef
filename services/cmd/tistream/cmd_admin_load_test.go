package main

import (
	"bytes"
	"context"
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

// The store table says what its PENDING FILES are, under the table: the
// columns above it stay aligned.
func TestAdminTasksExplainsPendingFiles(t *testing.T) {
	var out bytes.Buffer
	printAdmin(&out, &metav1.ListTasksResponse{Streams: []*metav1.StreamStatus{
		{Task: &metav1.StreamTask{StoreId: 1, Epoch: 2, Owner: "dispatcher-1", LatestSeq: 11}, Checkpoint: &metav1.Checkpoint{Seq: 5}, PendingFiles: 6},
	}})
	lines := strings.Split(out.String(), "\n")
	require.Equal(t, []string{"STORE", "EPOCH", "OWNER", "ADDR", "LATEST", "SEQ", "CHECKPOINT", "SEQ", "PENDING", "FILES"}, strings.Fields(lines[2]))
	require.Equal(t, []string{"1", "2", "dispatcher-1", "-", "11", "5", "6"}, strings.Fields(lines[3]))
	require.Equal(t, strings.Index(lines[2], "PENDING"), strings.Index(lines[3], "6"), "aligned:\n%s", out.String())
	require.Contains(t, out.String(), "PENDING FILES: store files after the checkpoint")

	out.Reset()
	printAdmin(&out, &metav1.ListTasksResponse{})
	require.NotContains(t, out.String(), "PENDING FILES:", "no streams, no note")
}

// admin register waits for the meta-server longer than the other admin
// calls: it reads and checks the tenant's whole schema snapshot.
func TestAdminRegisterWaitsLonger(t *testing.T) {
	help := func(sub string) string {
		var out bytes.Buffer
		require.Equal(t, 0, runAdminTenants(context.Background(), sub, []string{"-h"}, &out, &out))
		return out.String()
	}
	require.Regexp(t, `-timeout duration\s+timeout of the call \(the meta-server reads and checks .*\(default 2m0s\)`, help("register"))
	require.Regexp(t, `-timeout duration\s+timeout of the call \(default 10s\)`, help("tenants"))
}
