package metaserver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/tistream/tistream/libs/grpcx"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	"google.golang.org/grpc"
)

const (
	// forwardWorkers send notifications concurrently, so one slow
	// dispatcher delays the others by at most its timeout.
	forwardWorkers = 4
	forwardTimeout = 2 * time.Second
)

// forwarder passes store file notifications on to the owning dispatchers,
// best effort: a full queue or a failed call drops the notification (the
// dispatcher's poll timer finds the file anyway), never blocks the RPC.
type forwarder struct {
	creds    credentials.TransportCredentials // set at start: what the meta-server presents to dispatchers
	log      *slog.Logger
	m        *metrics
	queue    chan forwardReq
	maxConns int

	mu    sync.Mutex
	conns map[string]*dispatcherConn
}

type forwardReq struct {
	addr string
	req  *dispatcherv1.NotifyRequest
}

type dispatcherConn struct {
	conn   *grpc.ClientConn
	client dispatcherv1.DispatcherServiceClient
	used   time.Time
}

func newForwarder(log *slog.Logger, m *metrics, queue, maxConns int) *forwarder {
	return &forwarder{log: log, m: m, queue: make(chan forwardReq, queue), maxConns: maxConns,
		conns: map[string]*dispatcherConn{}}
}

// enqueue never blocks.
func (f *forwarder) enqueue(addr string, req *dispatcherv1.NotifyRequest) {
	select {
	case f.queue <- forwardReq{addr: addr, req: req}:
	default:
		f.m.notifications.WithLabelValues("dropped").Inc()
	}
}

// run sends queued notifications until ctx ends.
func (f *forwarder) run(ctx context.Context, spawn func(func())) {
	for range forwardWorkers {
		spawn(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-f.queue:
					f.send(ctx, r)
				}
			}
		})
	}
}

func (f *forwarder) send(ctx context.Context, r forwardReq) {
	dc, err := f.conn(r.addr)
	if err != nil {
		f.m.notifications.WithLabelValues("forward_failed").Inc()
		f.log.Debug("dial dispatcher failed", "addr", r.addr, "err", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	_, err = dc.client.Notify(cctx, r.req)
	cancel()
	if err != nil {
		f.m.notifications.WithLabelValues("forward_failed").Inc()
		f.log.Debug("forward notification failed", "addr", r.addr, "tenant", r.req.TenantId,
			"store", r.req.StoreId, "seq", r.req.Seq, "err", err)
		f.drop(r.addr, dc)
		return
	}
	f.m.notifications.WithLabelValues("forwarded").Inc()
}

// conn returns the cached connection to addr, dialling it (lazily: gRPC
// connects on first use) and evicting the least recently used one when the
// cache is full.
func (f *forwarder) conn(addr string) (*dispatcherConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if dc, ok := f.conns[addr]; ok {
		dc.used = now
		return dc, nil
	}
	if len(f.conns) >= f.maxConns {
		var oldest string
		for a, dc := range f.conns {
			if oldest == "" || dc.used.Before(f.conns[oldest].used) {
				oldest = a
			}
		}
		_ = f.conns[oldest].conn.Close()
		delete(f.conns, oldest)
	}
	cc, err := grpcx.Dial(addr, f.creds)
	if err != nil {
		return nil, err
	}
	dc := &dispatcherConn{conn: cc, client: dispatcherv1.NewDispatcherServiceClient(cc), used: now}
	f.conns[addr] = dc
	return dc, nil
}

// drop closes a connection that failed, unless it was replaced meanwhile.
func (f *forwarder) drop(addr string, dc *dispatcherConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns[addr] == dc {
		delete(f.conns, addr)
		_ = dc.conn.Close()
	}
}

// close closes every cached connection.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a, dc := range f.conns {
		_ = dc.conn.Close()
		delete(f.conns, a)
	}
}
