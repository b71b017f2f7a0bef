//go:build linux

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetaServersBehindAService: two meta-servers, and everything that
// calls the meta-server — the simulator's registration and notifications,
// `admin tasks` — is given the standby's address, as a Service in front of
// both sends about half the calls, with TLS and authorization on. Every
// call is served (the standby forwards to the leader, the clients then
// follow the leader), and the pulled stream verifies against the truth.
func TestMetaServersBehindAService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 2, Sorters: 2, Dispatchers: 1})
	var leader, standby *member
	require.Eventually(t, func() bool {
		for _, m := range f.ofKind("meta-server") {
			if strings.Contains(metrics(t, m.httpAddr), "\ntistream_meta_leader 1\n") {
				leader = m
			}
		}
		return leader != nil
	}, time.Minute, 100*time.Millisecond)
	for _, m := range f.ofKind("meta-server") {
		if m != leader {
			standby = m
		}
	}
	workload(t, f.dir, f.bufferURL, standby.grpcAddr, f.first("api-server").grpcAddr, 2, f.clients())
	m := metrics(t, standby.httpAddr)
	require.Contains(t, m, "\ntistream_meta_leader 0\n", "%s is the standby", standby.name)
	for _, method := range []string{"RegisterTenant", "ListTasks"} {
		require.Contains(t, m, `tistream_meta_forwarded_total{method="`+method+`",result="answered"}`,
			"the standby forwarded the first %s of each client", method)
	}
	require.Contains(t, metrics(t, leader.httpAddr), "\ntistream_meta_leader 1\n", "one leader throughout")
}
