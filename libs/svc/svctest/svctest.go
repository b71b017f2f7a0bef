// Package svctest is what the services' tests share: a real etcd for one
// test, a logger that writes to the test's log, a buffer to read while it is written.
package svctest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd starts an embedded etcd on 127.0.0.1 (free ports) for the test and
// returns a client of it; both are closed when the test ends.
func Etcd(t testing.TB) *clientv3.Client {
	t.Helper()
	e, err := etcdx.StartEmbedded(etcdx.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Logger returns a text logger at level that writes to t.Log. Lines logged
// after the test's cleanups reached it are dropped (t.Log would panic):
// call it before starting the services that use it, so that its cleanup
// runs after theirs.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type logWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
