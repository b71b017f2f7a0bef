package schemaregistry

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/svc/svctest"
)

// A load that takes long says so while it runs, and the line that ends it
// says how many table versions it read and how long it took.
func TestLoadReportsProgress(t *testing.T) {
	w := sharedWorld(t)
	defer func(every time.Duration) { loadReportEvery = every }(loadReportEvery)
	loadReportEvery = 5 * time.Millisecond
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)

	logs := &svctest.Buffer{}
	// Every read of the snapshot waits (at most 10 s) for the line that
	// says the load is still reading it.
	pl := &snapshotReads{Store: w.pool, onRead: func() {
		for i := 0; i < 1000 && !strings.Contains(logs.String(), `msg="loading the schema history: reading it"`); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}}
	s, err := New(testConfig(), Deps{Log: slog.New(slog.NewTextHandler(logs, nil)), Registry: prometheus.NewRegistry(),
		Etcd: cli, Pool: pl, Store: mustLocalFS(t)})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	defer func() { _ = s.Stop(context.Background()) }()
	require.Eventually(t, func() bool {
		st, ok := s.TenantStatus(1)
		return ok && st.Loaded
	}, 30*time.Second, 5*time.Millisecond)

	out := logs.String()
	require.Contains(t, out, `msg="loading the schema history: reading it" service=schema-registry tenant=1 key=committed_data_pool/tenant-1/schema_snap/`)
	loaded := regexp.MustCompile(`msg="schema history loaded" service=schema-registry tenant=1 source=snapshot:\S+ table_versions=(\d+) took=\S+`).FindStringSubmatch(out)
	require.NotNil(t, loaded, "no loaded line with its counts in:\n%s", out)
	require.Equal(t, strconv.Itoa(w.simCfg.Tables), loaded[1], "the snapshot's tables")
}
