package capture

import (
	"context"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/tikv/mvcc"
	"github.com/tikv/client-go/v2/tikv"
	"github.com/tikv/client-go/v2/tikvrpc"
	"github.com/tikv/client-go/v2/util/async"
)

// Hijacker is for mockstore.WithClientHijacker: it installs the write
// observer on the unistore behind the client and returns a client through
// which every kv RPC of TiDB passes.
func (c *Capture) Hijacker(inner tikv.Client) tikv.Client {
	if c.cfg.OnlyConcurrencyManager {
		return &client{Client: inner, c: c}
	}
	if err := installObserver(inner, func(w mvcc.DBWriter) mvcc.DBWriter { return &observedWriter{DBWriter: w, c: c} }); err != nil {
		c.mu.Lock()
		c.fail(err)
		c.mu.Unlock()
	}
	return &client{Client: inner, c: c}
}

// client sees every kv RPC: it holds the in-memory lock of async-commit
// and 1PC prewrites while they run, takes TiDB's region splits into the
// model, and counts lock-resolution outcomes.
type client struct {
	tikv.Client
	c *Capture
}

func (h *client) SendRequest(ctx context.Context, addr string, req *tikvrpc.Request, timeout time.Duration) (*tikvrpc.Response, error) {
	if req.Type == tikvrpc.CmdPrewrite {
		if p := req.Prewrite(); p.UseAsyncCommit || p.TryOnePc {
			keys := make([][]byte, len(p.Mutations))
			for i, m := range p.Mutations {
				keys[i] = m.Key
			}
			defer h.c.memUnlock(h.c.memLock(p.StartVersion, keys))
		}
	} else if version, keys, ranges, ok := readOf(req); ok && !h.c.noCM.Load() {
		h.c.waitMemLocks(version, keys, ranges)
	}
	resp, err := h.Client.SendRequest(ctx, addr, req, timeout)
	if err == nil && resp != nil {
		h.c.observeRPC(req, resp)
	}
	return resp, err
}

// SendRequestAsync goes through SendRequest, as unistore's own client
// serves async requests.
func (h *client) SendRequestAsync(ctx context.Context, addr string, req *tikvrpc.Request, cb async.Callback[*tikvrpc.Response]) {
	go func() { cb.Schedule(h.SendRequest(ctx, addr, req, tikv.ReadTimeoutMedium)) }()
}

func (c *Capture) observeRPC(req *tikvrpc.Request, resp *tikvrpc.Response) {
	if regErr, err := resp.GetRegionError(); err != nil || regErr != nil {
		return
	}
	switch req.Type {
	case tikvrpc.CmdSplitRegion:
		c.SplitAt(req.SplitRegion().SplitKeys)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch req.Type {
	case tikvrpc.CmdPrewrite:
		p, r := req.Prewrite(), resp.Resp.(*kvrpcpb.PrewriteResponse)
		if len(r.Errors) > 0 {
			return
		}
		switch {
		case r.OnePcCommitTs > 0:
			c.stats.OnePCPrewrites++
		case p.TryOnePc:
			c.stats.OnePCFallbacks++
		case r.MinCommitTs > 0:
			c.stats.AsyncCommitPrewrites++
		}
	case tikvrpc.CmdCheckTxnStatus:
		r := resp.Resp.(*kvrpcpb.CheckTxnStatusResponse)
		if c.stats.CheckTxnStatus == nil {
			c.stats.CheckTxnStatus = make(map[string]int64)
		}
		name := r.Action.String()
		if r.CommitVersion > 0 {
			name = "Committed"
		}
		c.stats.CheckTxnStatus[name]++
	case tikvrpc.CmdResolveLock:
		c.stats.ResolveLocks++
	case tikvrpc.CmdCheckSecondaryLocks:
		c.stats.CheckSecondaryLocks++
	case tikvrpc.CmdTxnHeartBeat:
		c.stats.HeartBeats++
	}
}
