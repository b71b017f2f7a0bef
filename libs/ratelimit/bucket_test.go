package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestBucketLendsAndRefills: a full bucket serves its burst at once, then
// lends: each taker waits for what is owed, in the order asked, and waits
// shrink as time refills the bucket.
func TestBucketLendsAndRefills(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := New(100, c.now)
	for _, step := range []struct {
		advance time.Duration
		take    uint64
		want    time.Duration
	}{
		{0, 100, 0},                                      // the burst
		{0, 50, 500 * time.Millisecond},                  // lent: 50 owed at 100/s
		{0, 50, time.Second},                             // queued behind the first loan
		{time.Second, 0, 0},                              // nothing taken, nothing waited
		{0, 100, time.Second},                            // 1 s refilled 100 of the 100 owed: this one waits a second
		{10 * time.Second, 250, 1500 * time.Millisecond}, // refill caps at the burst (100)
	} {
		c.advance(step.advance)
		if got := b.Reserve(step.take); got != step.want {
			t.Fatalf("after %v, Reserve(%d) = %v, want %v", step.advance, step.take, got, step.want)
		}
	}
}

func TestBucketUnlimitedAndRateChanges(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := New(0, c.now)
	if d := b.Reserve(1 << 40); d != 0 {
		t.Fatalf("unlimited bucket waits %v", d)
	}
	b.SetRate(10)
	if d := b.Reserve(20); d != 2*time.Second {
		t.Fatalf("after limiting to 10/s, 20 tokens wait %v, want 2s (a bucket that was unlimited starts empty)", d)
	}
	b.SetRate(20) // the debt stays; it is paid at the new rate
	if d := b.Reserve(0); d != 0 {
		t.Fatalf("Reserve(0) = %v", d)
	}
	if d := b.Reserve(20); d != 2*time.Second {
		t.Fatalf("at 20/s with 20 owed, 20 more wait %v, want 2s", d)
	}
	b.Cancel(20)
	if d := b.Reserve(10); d != 1500*time.Millisecond {
		t.Fatalf("after a cancel, 10 more wait %v, want 1.5s", d)
	}
	if b.Rate() != 20 {
		t.Fatalf("Rate() = %d", b.Rate())
	}
}

func TestTakeGivesBackOnCancel(t *testing.T) {
	b := New(1, nil)
	if d, err := b.Take(context.Background(), 1); err != nil || d != 0 {
		t.Fatalf("first token: %v %v", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Take(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take on a cancelled context: %v", err)
	}
	if d := b.Reserve(1); d > 1100*time.Millisecond {
		t.Fatalf("the cancelled take was not given back: the next waits %v", d)
	}
}

func TestSetFollowsTheGivenRate(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := NewSet(c.now)
	a := s.Get(1, 10)
	if s.Get(1, 10) != a || s.Get(2, 10) == a {
		t.Fatal("buckets are not one per key")
	}
	if s.Get(1, 5); a.Rate() != 5 {
		t.Fatalf("rate not updated: %d", a.Rate())
	}
	if d := s.Get(1, 0).Reserve(1 << 30); d != 0 {
		t.Fatalf("unlimited key waits %v", d)
	}
	if s.Get(1, 5) == a {
		t.Fatal("an unlimited key kept its bucket")
	}
}
