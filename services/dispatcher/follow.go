package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// follower receives a prefix's state: reset with the whole listing (first,
// and again after a compaction or a broken watch), then each later event.
type follower interface {
	reset(kvs []*mvccpb.KeyValue, rev int64)
	apply(ev *clientv3.Event)
}

// follow lists prefix and watches it from the listing's revision until ctx
// ends, relisting whenever the watch cannot continue (compacted revision,
// lost leader, closed channel). Errors are retried with a capped backoff.
func follow(ctx context.Context, cli *clientv3.Client, log *slog.Logger, prefix string, f follower) {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("etcd list failed", "prefix", prefix, "err", err)
			}
			bo.wait(ctx)
			continue
		}
		f.reset(resp.Kvs, resp.Header.Revision)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		healthy := watchLoop(wch, f)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if healthy {
			bo.reset()
		}
		log.Info("etcd watch ended, relisting", "prefix", prefix)
		bo.wait(ctx)
	}
}

// watchLoop applies events until the channel ends or reports an error; it
// says whether any event was applied (so the backoff can reset).
func watchLoop(wch clientv3.WatchChan, f follower) bool {
	applied := false
	for resp := range wch {
		if resp.CompactRevision != 0 || resp.Err() != nil || resp.Canceled {
			return applied
		}
		for _, ev := range resp.Events {
			f.apply(ev)
			applied = true
		}
	}
	return applied
}

// backoff is a capped exponential backoff.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max, cur: min} }

func (b *backoff) reset() { b.cur = b.min }

// next returns the delay to wait now and doubles the following one.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d
}

// wait sleeps the next delay or until ctx ends; it reports whether ctx is
// still alive.
func (b *backoff) wait(ctx context.Context) bool { return b.waitOr(ctx, nil) }

// waitOr is wait that also ends when early closes (nil never does).
func (b *backoff) waitOr(ctx context.Context, early <-chan struct{}) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-early:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
