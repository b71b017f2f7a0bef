package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pull is one open change stream.
type pull struct {
	s       *Service
	log     *slog.Logger
	state   *pullState
	tenant  uint64
	puller  *pool.Puller
	sch     *schemaFollower
	out     *batcher
	held    []pool.Row    // complete in the pool, waiting for the registry
	dataAt  uint64        // the puller's resolved ts
	sent    uint64        // the last resolved ts sent
	regWait time.Duration // backoff while the registry is behind the pool (wake.go)
}

// run streams until ctx ends or something fails.
func (p *pull) run(ctx context.Context) error {
	for {
		wake := p.s.wake.Chan(p.tenant) // before reading: a notice during the round counts
		// A deregistered tenant's open pulls end here (offboard.go).
		if err := p.s.notServed(p.tenant); err != nil {
			return err
		}
		busy, err := p.round(ctx)
		if err != nil {
			return err
		}
		if !busy {
			if err := p.s.waitData(ctx, wake, p.registryBackoff()); err != nil {
				return err
			}
		}
	}
}

// round reads what the pool has published (bounded), fetches the schema
// changes up to it, and sends everything both have completed. busy means
// there is more to read right away.
func (p *pull) round(ctx context.Context) (busy bool, err error) {
	if len(p.held) < p.s.cfg.MaxHeldRows {
		rows, resolved, caughtUp, err := p.puller.Poll(ctx)
		if err != nil {
			return false, fmt.Errorf("read the pool of tenant %d: %w", p.tenant, err)
		}
		if len(p.held) == 0 {
			// Nothing waits (the usual case): the rows are held as Poll
			// returned them, valid until Release, which waits until they
			// are all sent; capped, so that rows appended later go to an
			// array of the pull's own.
			p.held = rows[:len(rows):len(rows)]
		} else {
			p.held = append(p.held, rows...)
		}
		p.dataAt = max(p.dataAt, resolved)
		busy = !caughtUp
	}
	if err := p.sch.advance(ctx, p.dataAt); err != nil {
		if !retryable(err) {
			return false, registryStatus(err, "tenant %d: schema changes after ts %d", p.tenant, p.sch.known)
		}
		// Rows wait; the registry may be restarting or behind.
		p.log.Debug("schema registry not answering, holding rows", "known_ts", p.sch.known, "held", len(p.held), "err", err)
		busy = false
	}
	if err := p.emit(min(p.dataAt, p.sch.known)); err != nil {
		return busy, err
	}
	if len(p.held) == 0 {
		// Every row the puller returned is sent, encoded in its message:
		// the buffers they were read into can take the next reads.
		p.puller.Release()
	}
	return busy, nil
}

// emit sends the held rows with commit_ts <= limit, the DDL events up to
// limit among them (a DDL at D before any row at D or later), and resolved
// limit after them.
func (p *pull) emit(limit uint64) error {
	n := 0
	for ; n < len(p.held) && p.held[n].CommitTs <= limit; n++ {
		r := &p.held[n]
		if err := p.sch.applyThrough(r.CommitTs, p.out.ddl); err != nil {
			return err
		}
		id, err := tidbcodec.DecodeTableID(r.Key)
		if err != nil {
			return status.Errorf(codes.DataLoss, "tenant %d: pool row key %x at %d: %v", p.tenant, r.Key, r.CommitTs, err)
		}
		if !p.sch.wants(id) {
			continue
		}
		if err := p.out.row(r, id, p.sch.version); err != nil {
			return err
		}
	}
	if n == len(p.held) {
		p.held = nil // drop the array: it may be large after a catch-up
	} else {
		clear(p.held[:n])
		p.held = p.held[n:]
	}
	if err := p.sch.applyThrough(limit, p.out.ddl); err != nil {
		return err
	}
	if limit > p.sent {
		p.out.resolved(limit)
		p.sent = limit
		p.state.resolved.Store(limit)
		p.s.m.resolvedLag.WithLabelValues(p.state.kind).Observe(p.s.now().Sub(tsTime(limit)).Seconds())
	}
	return p.out.flush()
}
