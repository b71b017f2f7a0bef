package usage

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// DefaultFlushInterval is how often a process writes its usage records:
// the most a killed process loses, traded against one PUT per tenant with
// usage per process per interval.
const DefaultFlushInterval = time.Minute

// Flusher writes a Meter's counts as RAW usage records to the pool.
type Flusher struct {
	m        *Meter
	store    objstore.Store
	instance string
	log      *slog.Logger

	seq     uint64
	unsent  []pendingRecord // built, not known to be written: retried as they are
	written int
}

// pendingRecord is a RAW record with its key: a retry writes the same
// bytes under the same key, so it lands at most once.
type pendingRecord struct {
	key string
	rec *metav1.UsageRecord
}

// NewFlusher writes m's counts to store as process incarnation instance
// (unique per process start, e.g. the service id and its start time: a
// restarted process must not reuse the keys of its previous life).
func NewFlusher(m *Meter, store objstore.Store, instance string, log *slog.Logger) *Flusher {
	return &Flusher{m: m, store: store, instance: layout.SafeSegment(instance), log: log}
}

// Flush writes what was counted since the last flush, one record per
// (tenant, hour), and retries what an earlier flush could not write. On
// error what is not written stays for the next flush.
func (f *Flusher) Flush(ctx context.Context) error {
	taken := f.m.take()
	slots := make([]slot, 0, len(taken))
	for k := range taken {
		slots = append(slots, k)
	}
	slices.SortFunc(slots, func(a, b slot) int {
		if a.hourMs != b.hourMs {
			return int(a.hourMs - b.hourMs)
		}
		return int(a.tenant - b.tenant)
	})
	now := f.m.now().UnixMilli()
	for _, k := range slots {
		c := taken[k]
		if isZero(c) {
			continue
		}
		f.seq++
		f.unsent = append(f.unsent, pendingRecord{
			key: layout.UsageRawKey(k.tenant, k.hourMs, f.instance, f.seq),
			rec: &metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW, TenantId: k.tenant,
				HourUnixMs: k.hourMs, Instance: f.instance, Seq: f.seq, WrittenUnixMs: now, Counts: c},
		})
	}
	for len(f.unsent) > 0 {
		p := f.unsent[0]
		if err := putOnce(ctx, f.store, p.key, p.rec); err != nil {
			return err
		}
		f.unsent = f.unsent[1:]
		f.written++
	}
	return nil
}

// Run flushes every interval until ctx ends, then once more within
// finalTimeout (a graceful stop loses nothing it could write).
func (f *Flusher) Run(ctx context.Context, interval, finalTimeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := f.Flush(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("usage records not written, retried next flush", "err", err, "unsent", len(f.unsent))
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), finalTimeout)
			defer cancel()
			if err := f.Flush(fctx); err != nil {
				f.log.Warn("final usage flush failed: this interval's usage is lost", "err", err, "unsent", len(f.unsent))
			}
			return
		}
	}
}
