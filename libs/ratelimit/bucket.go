// Package ratelimit is a token bucket that lends: a caller takes what it
// needs at once and is told how long to wait before using it, so a request
// larger than the bucket's burst (a big store file, a big response message)
// is delayed in proportion to its size instead of refused, and concurrent
// callers are served in the order they asked. The services use it for the
// tenants' rate quotas (docs/tenants.md, "Quotas").
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Bucket refills at Rate tokens per second up to Burst. A rate of 0 means
// unlimited: Take never waits. Safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	now    func() time.Time
	rate   float64
	burst  float64
	tokens float64 // negative: lent ahead of the refill
	last   time.Time
}

// New returns a bucket of rate tokens per second (0 = unlimited) that holds
// at most one second of tokens, starting full. now nil means time.Now.
func New(rate uint64, now func() time.Time) *Bucket {
	if now == nil {
		now = time.Now
	}
	b := &Bucket{now: now}
	b.SetRate(rate)
	b.tokens = b.burst
	return b
}

// Rate returns the rate in tokens per second (0 = unlimited).
func (b *Bucket) Rate() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return uint64(b.rate)
}

// SetRate changes the rate; what is lent stays lent, so a lowered rate
// slows the next takers at once. The burst is one second of the new rate.
func (b *Bucket) SetRate(rate uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if float64(rate) == b.rate && !b.last.IsZero() {
		return
	}
	b.refill()
	b.rate, b.burst = float64(rate), float64(rate)
	b.tokens = min(b.tokens, b.burst)
}

// refill adds the tokens earned since last. Callers hold mu.
func (b *Bucket) refill() {
	now := b.now()
	if !b.last.IsZero() && b.rate > 0 {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// Reserve takes n tokens and returns how long the caller must wait before
// using them (0 when the bucket had them, or is unlimited).
func (b *Bucket) Reserve(n uint64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 || n == 0 {
		return 0
	}
	b.refill()
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Cancel gives back n tokens reserved and not used.
func (b *Bucket) Cancel(n uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 {
		return
	}
	b.refill()
	b.tokens = min(b.burst, b.tokens+float64(n))
}

// Wait sleeps for d unless ctx ends first.
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Take reserves n tokens and waits until they may be used. When ctx ends
// first the tokens are given back and ctx's error returned. It returns how
// long it waited.
func (b *Bucket) Take(ctx context.Context, n uint64) (time.Duration, error) {
	d := b.Reserve(n)
	if err := Wait(ctx, d); err != nil {
		b.Cancel(n)
		return 0, err
	}
	return d, nil
}

// Set is one bucket per key (a tenant), each at the rate its caller gives
// on every use, so a changed quota applies from the next use.
type Set struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[uint64]*Bucket
}

// NewSet returns an empty set; now nil means time.Now.
func NewSet(now func() time.Time) *Set {
	return &Set{now: now, m: map[uint64]*Bucket{}}
}

// Get returns key's bucket at rate (created full on first use). A rate of
// 0 drops the key's bucket: an unlimited key keeps no state.
func (s *Set) Get(key, rate uint64) *Bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[key]
	switch {
	case rate == 0:
		delete(s.m, key)
		return New(0, s.now)
	case b == nil:
		b = New(rate, s.now)
		s.m[key] = b
	default:
		b.SetRate(rate)
	}
	return b
}
