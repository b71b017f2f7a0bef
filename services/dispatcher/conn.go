package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"google.golang.org/grpc/credentials"

	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/route/routepb"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// queueDepth bounds the requests waiting for a connection's sender. The
// streams' windows bound memory anyway; this only keeps a fast stream from
// queueing far ahead of the others on a shared connection.
const queueDepth = 16

var errPoolClosed = errors.New("dispatcher is stopping")

// connPool holds one Ingest stream per sorter address, shared by every
// stream of this dispatcher sending to that sorter. A connection that breaks
// is dead for good: the runs that used it restart, and the next user gets a
// new one, so the requests of one run on one connection are never split
// across two gRPC streams (which could reorder them).
type connPool struct {
	creds   credentials.TransportCredentials // what the dispatcher presents to sorters
	log     *slog.Logger
	m       *metrics
	deliver func(addr string, resp *sorterv1.IngestResponse)

	mu     sync.Mutex
	conns  map[string]*sorterConn
	closed bool
	wg     sync.WaitGroup // every connection's send and receive loops
}

func newConnPool(log *slog.Logger, m *metrics, creds credentials.TransportCredentials, deliver func(string, *sorterv1.IngestResponse)) *connPool {
	return &connPool{log: log, m: m, creds: creds, deliver: deliver, conns: map[string]*sorterConn{}}
}

// current returns the live connection to addr, nil if there is none.
func (p *connPool) current(addr string) *sorterConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[addr]
}

// get returns the live connection to addr, opening one if needed.
func (p *connPool) get(addr string) (*sorterConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	if c := p.conns[addr]; c != nil {
		return c, nil
	}
	cc, err := grpcx.Dial(addr, p.creds)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &sorterConn{pool: p, addr: addr, cc: cc, ctx: ctx, cancel: cancel,
		queue: make(chan *sendItem, queueDepth), dead: make(chan struct{}), subs: map[*runState]struct{}{}}
	p.conns[addr] = c
	p.wg.Add(1)
	go c.sendLoop()
	return c, nil
}

// prune closes the connections to addresses no registered sorter has.
func (p *connPool) prune(live map[string]bool) {
	p.mu.Lock()
	var gone []*sorterConn
	for addr, c := range p.conns {
		if !live[addr] {
			gone = append(gone, c)
		}
	}
	p.mu.Unlock()
	for _, c := range gone {
		c.fail(fmt.Errorf("sorter at %s is no longer registered", c.addr))
	}
}

// close closes every connection and waits for their goroutines; later gets
// fail.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	all := make([]*sorterConn, 0, len(p.conns))
	for _, c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.fail(errPoolClosed)
	}
	p.wg.Wait()
}

// sendItem is one request of one run. It is dropped instead of sent when
// its run ended first: the run's successor resends from the checkpoint, and
// what one run sent on a connection stays a prefix of what it queued.
// commit, when set, makes that decision instead of run.ended (and records
// what is sent, see delivered.go): the sender calls it right before Send.
type sendItem struct {
	run    *runState
	req    *routepb.Request
	commit func() bool
	enq    time.Time
}

// sorterConn is one Ingest stream to one sorter.
type sorterConn struct {
	pool   *connPool
	addr   string
	cc     *grpc.ClientConn
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *sendItem

	failOnce sync.Once
	dead     chan struct{}
	err      error

	mu   sync.Mutex
	subs map[*runState]struct{}
}

// subscribe makes r fail when the connection breaks; it reports false (and
// fails r) if it already has.
func (c *sorterConn) subscribe(r *runState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.dead:
		r.fail(reasonIngest, c.err)
		return false
	default:
	}
	c.subs[r] = struct{}{}
	return true
}

func (c *sorterConn) unsubscribe(r *runState) {
	c.mu.Lock()
	delete(c.subs, r)
	c.mu.Unlock()
}

// send queues req; it blocks while the queue is full (the sorter is slow),
// until the run ends or the connection breaks. commit may be nil (see
// sendItem).
func (c *sorterConn) send(r *runState, req *routepb.Request, commit func() bool) error {
	select {
	case c.queue <- &sendItem{run: r, req: req, commit: commit, enq: time.Now()}:
		return nil
	case <-c.dead:
		return c.err
	case <-r.failed:
		return r.err()
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// fail marks the connection dead, tears it down and fails its runs.
func (c *sorterConn) fail(err error) {
	c.failOnce.Do(func() {
		c.pool.mu.Lock()
		if c.pool.conns[c.addr] == c {
			delete(c.pool.conns, c.addr)
		}
		c.pool.mu.Unlock()
		c.mu.Lock()
		c.err = err
		close(c.dead)
		subs := c.subs
		c.subs = nil
		c.mu.Unlock()
		c.cancel()
		_ = c.cc.Close()
		if !errors.Is(err, errPoolClosed) {
			c.pool.log.Warn("ingest stream to sorter broke", "sorter_addr", c.addr, "err", err)
		}
		for r := range subs {
			r.fail(reasonIngest, err)
		}
	})
}

// sendLoop opens the Ingest stream and is its only sender.
func (c *sorterConn) sendLoop() {
	defer c.pool.wg.Done()
	// The requests are routepb.Requests, written by the codec straight
	// from routed events (the bytes of an IngestRequest).
	stream, err := sorterv1.NewSorterServiceClient(c.cc).Ingest(c.ctx, grpcx.CallCodec())
	if err != nil {
		c.fail(fmt.Errorf("open ingest stream to %s: %w", c.addr, err))
		return
	}
	c.pool.wg.Add(1)
	go c.recvLoop(stream)
	for {
		select {
		case it := <-c.queue:
			if it.commit != nil && !it.commit() || it.commit == nil && it.run.ended() {
				continue
			}
			err := stream.SendMsg(it.req)
			c.pool.m.sendSeconds.Observe(time.Since(it.enq).Seconds())
			// Sent or not, the request is done with: its events were
			// encoded for it alone (requests), and the codec copied them.
			// A request never sent is left to the collector.
			it.req.Release()
			if err != nil {
				c.fail(fmt.Errorf("send to sorter %s: %w", c.addr, err))
				return
			}
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *sorterConn) recvLoop(stream grpc.BidiStreamingClient[sorterv1.IngestRequest, sorterv1.IngestResponse]) {
	defer c.pool.wg.Done()
	for {
		resp, err := stream.Recv()
		if err != nil {
			c.fail(fmt.Errorf("receive from sorter %s: %w", c.addr, err))
			return
		}
		c.pool.deliver(c.addr, resp)
	}
}
