package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// EventKind says which field of an Event is set.
type EventKind uint8

// Event kinds.
const (
	EventRow EventKind = iota + 1
	EventDDL
	EventResolved
)

func (k EventKind) String() string {
	switch k {
	case EventRow:
		return "row"
	case EventDDL:
		return "ddl"
	case EventResolved:
		return "resolved"
	}
	return "invalid"
}

// Event is one event of a stream, in the stream's order: a committed row
// change, a DDL, or a resolved ts (no row or DDL at or below it follows).
type Event struct {
	Kind     EventKind
	Row      *apiv1.RowChange
	DDL      *apiv1.DDL
	Resolved uint64
}

// Ts is the event's commit ts, or the resolved ts.
func (e Event) Ts() uint64 {
	switch e.Kind {
	case EventRow:
		return e.Row.CommitTs
	case EventDDL:
		return e.DDL.CommitTs
	}
	return e.Resolved
}

// EventOf is a raw event of the API as an Event (ok is false for an empty
// or unknown one). Stream.Next does this, after dropping what it already
// delivered; it is exported for code that reads the generated client.
func EventOf(pe *apiv1.PullEvent) (ev Event, ok bool) {
	switch e := pe.GetEvent().(type) {
	case *apiv1.PullEvent_Row:
		return Event{Kind: EventRow, Row: e.Row}, e.Row != nil
	case *apiv1.PullEvent_Ddl:
		return Event{Kind: EventDDL, DDL: e.Ddl}, e.Ddl != nil
	case *apiv1.PullEvent_Resolved:
		return Event{Kind: EventResolved, Resolved: e.Resolved.GetTs()}, true
	}
	return Event{}, false
}

// Stream is one pull. Next returns its events in order; it is not safe for
// concurrent use.
type Stream struct {
	c      *Client
	ctx    context.Context
	target Target
	// from is where a reopened stream may start at the earliest: the
	// pull's start ts, or the commit ts of a TRUNCATE TABLE it followed.
	from uint64

	recv   func() ([]*apiv1.PullEvent, error)
	cancel context.CancelFunc // of the open server stream
	batch  []*apiv1.PullEvent

	resolved uint64              // the last resolved ts delivered
	lastTs   uint64              // commit ts of the last row or DDL delivered
	seen     map[string]struct{} // what was delivered at lastTs
	idBuf    []byte

	failures   int // reconnects in a row without an event
	reconnects int
	err        error // sticky: the stream is over
}

// Pull starts a stream of target from start ts (rows with commit_ts >=
// from; 0 = the tenant's registration). The stream connects on the first
// Next; ctx ends it.
func (c *Client) Pull(ctx context.Context, target Target, from uint64) (*Stream, error) {
	if err := target.validate(); err != nil {
		return nil, err
	}
	return &Stream{c: c, ctx: ctx, target: target, from: from, seen: map[string]struct{}{}}, nil
}

// Next returns the next event. Errors a reconnect may fix are retried
// (with backoff, up to Options.RetryLimit in a row); what it returns is
// final: ctx's error, ErrNotFound, *OutOfRangeError, ErrUnauthenticated,
// ErrInvalidArgument, ErrDataLoss or ErrGaveUp.
func (s *Stream) Next() (Event, error) {
	for s.err == nil {
		for len(s.batch) > 0 {
			ev := s.batch[0]
			s.batch[0] = nil
			s.batch = s.batch[1:]
			if out, ok := s.accept(ev); ok {
				return out, nil
			}
		}
		if s.recv == nil {
			s.connect()
			continue
		}
		events, err := s.recv()
		if err != nil {
			s.broken(err)
			continue
		}
		s.failures = 0
		s.batch = events
	}
	return Event{}, s.err
}

// Resolved is the last resolved ts Next returned.
func (s *Stream) Resolved() uint64 { return s.resolved }

// Reconnects counts how often the stream was reopened.
func (s *Stream) Reconnects() int { return s.reconnects }

// Target is what the stream reads now (a table pull follows its table
// through TRUNCATE TABLE to the new table id).
func (s *Stream) Target() Target { return s.target }

// Close ends the stream.
func (s *Stream) Close() {
	s.drop()
	if s.err == nil {
		s.err = errors.New("tistream: stream closed")
	}
}

func (s *Stream) drop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.recv, s.cancel, s.batch = nil, nil, nil
}

// resumeFrom is the start ts of a reopened stream: after the last resolved
// ts delivered (everything up to it was delivered), never before the
// pull's start.
func (s *Stream) resumeFrom() uint64 {
	if s.resolved == 0 {
		return s.from
	}
	return max(s.from, s.resolved+1)
}

func (s *Stream) connect() {
	if s.failures > 0 {
		if err := s.c.opts.Sleep(s.ctx, s.backoff()); err != nil {
			s.err = err
			return
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	start := s.resumeFrom()
	recv, err := s.c.open(ctx, s.target, start)
	if err != nil {
		cancel()
		s.broken(err)
		return
	}
	s.recv, s.cancel = recv, cancel
}

// broken handles a failed stream: a final error ends it, anything else
// schedules a reconnect.
func (s *Stream) broken(err error) {
	s.drop()
	start := s.resumeFrom()
	final, retry := classify(s.ctx, err, start)
	if !retry {
		s.err = final
		return
	}
	s.failures++
	if lim := s.c.opts.RetryLimit; lim > 0 && s.failures > lim {
		s.err = fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, s.failures, err)
		return
	}
	s.reconnects++
	s.c.opts.Logger.Warn("tistream stream broken; reconnecting", "target", s.target.String(), "resume_ts", start,
		"attempt", s.failures, "err", err)
}

// backoff is the wait before the next attempt: exponential in the failures
// in a row, capped, with jitter over its upper half.
func (s *Stream) backoff() time.Duration {
	o := s.c.opts
	d := o.MinBackoff << min(s.failures-1, 30)
	if d <= 0 || d > o.MaxBackoff {
		d = o.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// accept decides whether an event of the server stream is new to the
// consumer. After a reconnect the server sends again everything after the
// last resolved ts delivered: rows and DDLs below the last commit ts
// delivered were all delivered (the stream is in commit order), and at that
// ts those delivered are remembered by identity (a key appears once per
// commit ts).
func (s *Stream) accept(pe *apiv1.PullEvent) (Event, bool) {
	ev, ok := EventOf(pe)
	if !ok {
		return Event{}, false
	}
	switch ev.Kind {
	case EventRow:
		return ev, s.fresh(ev.Row.CommitTs, s.rowID(ev.Row))
	case EventDDL:
		if !s.fresh(ev.DDL.CommitTs, s.ddlID(ev.DDL)) {
			return Event{}, false
		}
		s.follow(ev.DDL)
		return ev, true
	}
	if ev.Resolved <= s.resolved {
		return Event{}, false
	}
	s.resolved = ev.Resolved
	if ev.Resolved >= s.lastTs {
		s.lastTs = ev.Resolved
		clear(s.seen)
	}
	return ev, true
}

func (s *Stream) fresh(ts uint64, id []byte) bool {
	switch {
	case ts <= s.resolved || ts < s.lastTs:
		return false
	case ts > s.lastTs:
		s.lastTs = ts
		clear(s.seen)
	case ts == s.lastTs:
		if _, dup := s.seen[string(id)]; dup {
			return false
		}
	}
	s.seen[string(id)] = struct{}{}
	return true
}

func (s *Stream) rowID(r *apiv1.RowChange) []byte {
	s.idBuf = append(append(s.idBuf[:0], 'r'), r.Key...)
	return s.idBuf
}

func (s *Stream) ddlID(d *apiv1.DDL) []byte {
	b := append(s.idBuf[:0], 'd')
	for _, v := range []int64{int64(d.Kind), d.DbId, d.TableId, d.OldTableId} {
		b = strconv.AppendInt(append(b, '/'), v, 10)
	}
	s.idBuf = b
	return b
}

// follow keeps a table pull on its table: a DDL names its id (so a reopened
// stream finds it after a rename), and TRUNCATE TABLE moves it to the new
// table id, whose rows a new server stream from the truncate's commit ts
// brings (the old one only covers the old id).
func (s *Stream) follow(d *apiv1.DDL) {
	if !s.target.isTable() || d.TableId == 0 {
		return
	}
	if d.Kind == apiv1.DDL_KIND_TRUNCATE_TABLE && (s.target.TableID == 0 || d.OldTableId == s.target.TableID) {
		s.target.TableID = d.TableId
		s.from = d.CommitTs
		s.drop()
		return
	}
	if s.target.TableID == 0 {
		s.target.TableID = d.TableId
	}
}
