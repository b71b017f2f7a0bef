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
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc/svctest"
)

// slowSnapshot holds every read of a schema snapshot until ready says so
// (at most 10 s).
type slowSnapshot struct {
	objstore.Store
	ready func() bool
}

func (s *slowSnapshot) wait(key string) {
	for i := 0; i < 1000 && strings.Contains(key, "/schema_snap/") && !s.ready(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *slowSnapshot) Get(ctx context.Context, key string) ([]byte, error) {
	s.wait(key)
	return s.Store.Get(ctx, key)
}

func (s *slowSnapshot) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.wait(key)
	return s.Store.GetRange(ctx, key, off, n)
}

// A load that takes long says so while it runs, and the line that ends it
// says how many table versions it read and how long it took.
func TestLoadReportsProgress(t *testing.T) {
	w := sharedWorld(t)
	defer func(every time.Duration) { loadReportEvery = every }(loadReportEvery)
	loadReportEvery = 5 * time.Millisecond
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)

	logs := &svctest.Buffer{}
	pl := &slowSnapshot{Store: w.pool, ready: func() bool {
		return strings.Contains(logs.String(), `msg="loading the schema history: reading it"`)
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
