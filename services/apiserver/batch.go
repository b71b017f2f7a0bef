package apiserver

import (
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/usage"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// sendFunc sends one response message and returns its size.
type sendFunc func(msg *response) (int, error)

// batcher packs events into response messages of at most maxRows rows and
// about maxBytes bytes of row data, in order, written as they are packed
// (wire.go).
type batcher struct {
	send              sendFunc
	kind              string
	m                 *metrics
	maxRows, maxBytes int
	buf               []byte // the events packed, encoded
	last              int    // the length of the last message sent
	events            int
	rows, bytes       int
	tenant            uint64
	usage             *usage.Meter // served rows and bytes, counted once sent
}

// rowEventOverhead approximates the framing of a row event beyond its bytes.
const rowEventOverhead = 48

func (b *batcher) row(r *pool.Row, tableID, version int64) error {
	if b.buf == nil {
		// Room for a message like the last one, or a few rows like this
		// one: a pull catching up sends full messages, a live one
		// messages of a row or two.
		b.buf = make([]byte, 0, min(b.maxBytes+b.maxBytes/8, max(4<<10, b.last+b.last/8, 16*(len(r.Key)+len(r.Value)+len(r.OldValue)+rowEventOverhead))))
	}
	b.buf = appendRow(b.buf, r, tableID, version)
	b.events++
	b.rows++
	b.bytes += len(r.Key) + len(r.Value) + len(r.OldValue) + rowEventOverhead
	if b.rows >= b.maxRows || b.bytes >= b.maxBytes {
		return b.flush()
	}
	return nil
}

func (b *batcher) ddl(d *apiv1.DDL) error {
	var err error
	if b.buf, err = appendDDL(b.buf, d); err != nil {
		return err
	}
	b.events++
	b.bytes += len(d.TableInfoJson) + rowEventOverhead
	b.m.ddlsSent.WithLabelValues(b.kind).Inc()
	return nil
}

func (b *batcher) resolved(ts uint64) {
	b.buf = appendResolved(b.buf, ts)
	b.events++
}

// flush sends what is packed. A message is never modified after it is
// sent (the next one is written in a new buffer: gRPC may let a stats
// handler read a message after SendMsg returns).
func (b *batcher) flush() error {
	if b.events == 0 {
		return nil
	}
	n, err := b.send(&response{b: b.buf})
	rows := b.rows
	b.last = len(b.buf)
	b.buf, b.events, b.rows, b.bytes = nil, 0, 0, 0
	if err != nil {
		return err
	}
	b.usage.Served(b.tenant, rows, n)
	b.m.rowsSent.WithLabelValues(b.kind).Add(float64(rows)) // once a message, not a label lookup per row
	b.m.messagesSent.WithLabelValues(b.kind).Inc()
	b.m.bytesSent.WithLabelValues(b.kind).Add(float64(n))
	return nil
}
