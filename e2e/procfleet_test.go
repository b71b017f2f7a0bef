//go:build linux

package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/objstore/s3test"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// member is one service process of a procFleet; it can be killed, paused
// and started again with the same command line and addresses.
type member struct {
	name     string
	kind     string // the -target
	args     []string
	grpcAddr string
	httpAddr string
	p        *proc
	starts   int
}

// procFleet is a fleet of separate processes: a real etcd (`tistream
// etcd`), a real S3-compatible server (versitygw) and `tistream run`
// processes for each service.
type procFleet struct {
	t         *testing.T
	dir       string
	bufferURL string
	poolURL   string
	etcdAddr  string
	members   []*member
	// s3 is the fleet's S3 server (tests that need a second bucket).
	s3 *s3test.Server
	// With procFleetOptions.Proxied, the services reach etcd and S3 through
	// these (the simulator and the test's own clients do not): S3 through
	// s3Throttle, then s3Proxy.
	etcdProxy, s3Proxy *faultProxy
	s3Throttle         *s3FaultProxy
	svcBuffer, svcPool string
	svcEtcd            string
	// tls is the fleet's CA and credentials: every member and client
	// speaks TLS, etcd included, as in a real deployment.
	tls *fleetTLS
}

type procFleetOptions struct {
	Metas, Sorters, Dispatchers int
	// Extra flags by -target.
	Extra map[string][]string
	// Proxied puts a faultProxy between the services and etcd, and another
	// between the services and S3.
	Proxied bool
}

func startProcFleet(t *testing.T, o procFleetOptions) *procFleet {
	t.Helper()
	s3 := s3test.Start(t)
	f := &procFleet{t: t, dir: t.TempDir(), bufferURL: s3.URL("buffer"), poolURL: s3.URL("pool"), s3: s3}
	var ids []string
	for i := 1; i <= o.Metas; i++ {
		ids = append(ids, "meta-server/meta-server-"+strconv.Itoa(i))
	}
	for i := 1; i <= o.Sorters; i++ {
		ids = append(ids, "sorter/sorter-"+strconv.Itoa(i))
	}
	for i := 1; i <= o.Dispatchers; i++ {
		ids = append(ids, "dispatcher/dispatcher-"+strconv.Itoa(i))
	}
	f.tls = newFleetTLS(t, f.dir, append(ids, "schema-registry/schema-registry", "api-server/api-server"))
	f.etcdAddr = freeAddr(t)
	ef := f.tls.files("etcd")
	etcd := start(t, "etcd", "etcd", "--data-dir", filepath.Join(f.dir, "etcd"), "--listen-client", f.etcdAddr,
		"--tls-cert", ef.CertFile, "--tls-key", ef.KeyFile, "--tls-ca", ef.CAFile)
	waitHTTPWith(t, etcd, f.tls.httpClient(t, "admin"), "https://"+f.etcdAddr+"/health", 60*time.Second)
	f.svcEtcd, f.svcBuffer, f.svcPool = "https://"+f.etcdAddr, f.bufferURL, f.poolURL
	if o.Proxied {
		f.etcdProxy = newFaultProxy(t, f.etcdAddr)
		f.s3Proxy = newFaultProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
		f.s3Throttle = newS3FaultProxy(t, "http://"+f.s3Proxy.Addr())
		via := *s3
		via.Endpoint = "http://" + f.s3Throttle.Addr()
		f.svcEtcd, f.svcBuffer, f.svcPool = "https://"+f.etcdProxy.Addr(), via.URL("buffer"), via.URL("pool")
	}
	for i := 1; i <= o.Metas; i++ {
		f.add("meta-server-"+strconv.Itoa(i), "meta-server", o.Extra)
	}
	registry := f.add("schema-registry", "schema-registry", o.Extra)
	for i := 1; i <= o.Sorters; i++ {
		id := "sorter-" + strconv.Itoa(i)
		f.add(id, "sorter", o.Extra, "--id", id, "--data-dir", filepath.Join(f.dir, id))
	}
	for i := 1; i <= o.Dispatchers; i++ {
		id := "dispatcher-" + strconv.Itoa(i)
		f.add(id, "dispatcher", o.Extra, "--id", id)
	}
	f.add("api-server", "api-server", o.Extra, "--schema-registry", registry.grpcAddr)
	return f
}

func (f *procFleet) add(name, kind string, extra map[string][]string, args ...string) *member {
	m := &member{name: name, kind: kind, grpcAddr: freeAddr(f.t), httpAddr: freeAddr(f.t)}
	m.args = append([]string{"run", "-target=" + kind, "--grpc-addr", m.grpcAddr, "--http-addr", m.httpAddr,
		"--etcd", f.svcEtcd, "--buffer", f.svcBuffer, "--pool", f.svcPool}, args...)
	m.args = append(m.args, f.tls.serverFlags(name, kind)...)
	m.args = append(m.args, extra[kind]...)
	f.members = append(f.members, m)
	f.startMember(m)
	return m
}

func (f *procFleet) startMember(m *member) {
	m.starts++
	name := m.name
	if m.starts > 1 {
		name += "-run" + strconv.Itoa(m.starts)
	}
	m.p = start(f.t, name, m.args...)
	waitReady(f.t, m.p, m.httpAddr, 60*time.Second)
}

func (f *procFleet) member(name string) *member {
	for _, m := range f.members {
		if m.name == name {
			return m
		}
	}
	f.t.Fatalf("no fleet member %q", name)
	return nil
}

func (f *procFleet) first(kind string) *member {
	for _, m := range f.members {
		if m.kind == kind {
			return m
		}
	}
	f.t.Fatalf("no fleet member of kind %q", kind)
	return nil
}

func (f *procFleet) ofKind(kind string) []*member {
	var out []*member
	for _, m := range f.members {
		if m.kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// kill sends SIGKILL and waits for the process to be gone.
func (f *procFleet) kill(m *member) {
	if !m.p.running() {
		return
	}
	_ = syscall.Kill(-m.p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-m.p.exited:
	case <-time.After(10 * time.Second):
		f.t.Fatalf("%s survived SIGKILL for 10 s", m.name)
	}
}

func (f *procFleet) pause(m *member)  { _ = syscall.Kill(-m.p.cmd.Process.Pid, syscall.SIGSTOP) }
func (f *procFleet) resume(m *member) { _ = syscall.Kill(-m.p.cmd.Process.Pid, syscall.SIGCONT) }

// metaAddrs are the meta-servers' gRPC addresses.
func (f *procFleet) metaAddrs() []string {
	var out []string
	for _, m := range f.ofKind("meta-server") {
		out = append(out, m.grpcAddr)
	}
	return out
}

// tasks asks whichever meta-server answers (the leader) for a tenant's
// tasks; nil when none answers within the timeout.
func (f *procFleet) tasks(tenant uint64, timeout time.Duration) *metav1.ListTasksResponse {
	for _, m := range f.ofKind("meta-server") {
		if !m.p.running() {
			continue
		}
		conn := f.tls.dial(f.t, m.grpcAddr, "admin")
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		resp, err := metav1.NewMetaServiceClient(conn).ListTasks(ctx, &metav1.ListTasksRequest{TenantId: tenant})
		cancel()
		conn.Close()
		if err == nil {
			return resp
		}
	}
	return nil
}

// leader is the meta-server that reports itself leader in its metrics (the
// first one when none does yet).
func (f *procFleet) leader() *member {
	for _, m := range f.ofKind("meta-server") {
		// The sample line, not the HELP line ("1 while this meta-server ...").
		if m.p.running() && strings.Contains(metrics(f.t, m.httpAddr), "\ntistream_meta_leader 1\n") {
			return m
		}
	}
	return f.first("meta-server")
}
