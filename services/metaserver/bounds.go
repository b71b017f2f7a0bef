package metaserver

import (
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons of tistream_meta_requests_refused_total (docs/operations.md,
// "Bounds").
const (
	reasonConcurrency   = "concurrency"     // --max-concurrent-calls
	reasonKeyTooLarge   = "key_too_large"   // --max-key-bytes
	reasonRate          = "rate"            // --range-ops-per-minute
	reasonTooManyRanges = "too_many_ranges" // --max-ranges-per-tenant
	reasonTooManyStores = "too_many_stores" // --max-stores-per-tenant
	reasonUnknownTenant = "unknown_tenant"  // not registered
	reasonMalformed     = "malformed"       // zero ids, seq 0, another cluster, no key
	reasonNoSuchFile    = "no_such_file"    // a new store's notification names no file in the buffer
)

// refuse counts a refused call and returns its status.
func (s *Service) refuse(method, reason string, code codes.Code, format string, args ...any) error {
	s.m.refused.WithLabelValues(method, reason).Inc()
	return status.Errorf(code, format, args...)
}

// limits are the meta-server's bounds that need state: the calls in flight
// and each tenant's token bucket for splits and merges.
type limits struct {
	calls chan struct{} // one token per call in flight

	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[uint64]*bucket // by tenant; only registered tenants get one
}

func newLimits(cfg Config) *limits {
	return &limits{calls: make(chan struct{}, cfg.MaxConcurrentCalls), perMinute: cfg.RangeOpsPerMinute,
		now: time.Now, buckets: map[uint64]*bucket{}}
}

// admit takes a slot for one call, or refuses at once when every slot is
// taken; the caller runs the returned release when the call ends.
func (s *Service) admit(method string) (func(), error) {
	select {
	case s.lim.calls <- struct{}{}:
		return func() { <-s.lim.calls }, nil
	default:
		return nil, s.refuse(method, reasonConcurrency, codes.ResourceExhausted,
			"the meta-server is serving %d calls already (--max-concurrent-calls=%d); retry with backoff",
			cap(s.lim.calls), cap(s.lim.calls))
	}
}

// bucket is a token bucket: perMinute tokens at most, refilled at
// perMinute per minute.
type bucket struct {
	tokens float64
	at     time.Time
}

// takeRangeOp takes one of the tenant's split/merge tokens, or refuses
// with RESOURCE_EXHAUSTED saying when the next one is available.
func (s *Service) takeRangeOp(method string, tenant uint64) error {
	l := s.lim
	l.mu.Lock()
	now := l.now()
	b := l.buckets[tenant]
	if b == nil {
		b = &bucket{tokens: float64(l.perMinute), at: now}
		l.buckets[tenant] = b
	}
	rate := float64(l.perMinute) / float64(time.Minute) // tokens per nanosecond
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(float64(l.perMinute), b.tokens+float64(d)*rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		l.mu.Unlock()
		return nil
	}
	wait := time.Duration((1 - b.tokens) / rate).Round(time.Second)
	l.mu.Unlock()
	return s.refuse(method, reasonRate, codes.ResourceExhausted,
		"tenant %d has used its %d range splits and merges per minute (--range-ops-per-minute=%d); retry in %s",
		tenant, l.perMinute, l.perMinute, max(wait, time.Second))
}

// checkKey refuses a client's key longer than --max-key-bytes.
func (s *Service) checkKey(method, field string, key []byte) error {
	if len(key) > s.cfg.MaxKeyBytes {
		return s.refuse(method, reasonKeyTooLarge, codes.InvalidArgument,
			"%s is %d bytes, more than the %d bytes a key may have (--max-key-bytes)", field, len(key), s.cfg.MaxKeyBytes)
	}
	return nil
}

// admitStore decides whether a store without a stream task may get one:
// existing lists the tenant's stores that have one (the mirror). It counts
// them together with the stores admitted but not yet written, so that
// concurrent first notifications cannot overshoot the bound.
func (n *notifier) admitStore(tenant, store uint64, existing []uint64, limit int) (ok bool, count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	known := map[uint64]struct{}{}
	for _, id := range existing {
		known[id] = struct{}{}
	}
	for id := range n.admitted[tenant] {
		known[id] = struct{}{}
	}
	if _, ok := known[store]; ok {
		return true, len(known)
	}
	if len(known) >= limit {
		return false, len(known)
	}
	if n.admitted == nil {
		n.admitted = map[uint64]map[uint64]struct{}{}
	}
	if n.admitted[tenant] == nil {
		n.admitted[tenant] = map[uint64]struct{}{}
	}
	n.admitted[tenant][store] = struct{}{}
	return true, len(known) + 1
}

// tooManyStores is the refusal of a store over --max-stores-per-tenant.
func (s *Service) tooManyStores(tenant, store uint64, count int) error {
	return s.refuse("NotifyStoreFile", reasonTooManyStores, codes.ResourceExhausted,
		"tenant %d has %d stores, the most it may have (--max-stores-per-tenant=%d); store %d gets no stream",
		tenant, count, s.cfg.MaxStoresPerTenant, store)
}

// tooManyRanges refuses a split of a tenant at its range limit
// (rangeLimit: its max_ranges quota, else --max-ranges-per-tenant).
func (s *Service) tooManyRanges(tenant uint64, active int, by string) error {
	return s.refuse("SplitRange", reasonTooManyRanges, codes.ResourceExhausted,
		"tenant %d has %d active ranges, the most it may have (%s); merge ranges before splitting",
		tenant, active, by)
}
