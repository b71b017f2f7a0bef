package apiserver

import (
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/recycle"
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
	spare             []byte // the last message's buffer, for the next one
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
		b.buf = b.take(min(b.maxBytes+b.maxBytes/8, max(4<<10, b.last+b.last/8, 16*(len(r.Key)+len(r.Value)+len(r.OldValue)+rowEventOverhead))))
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
	if b.buf == nil {
		b.buf = b.take(4 << 10)
	}
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
	if b.buf == nil {
		b.buf = b.take(64)
	}
	b.buf = appendResolved(b.buf, ts)
	b.events++
}

// take returns an empty buffer for the next message: the last one's,
// else a new one of capacity n.
func (b *batcher) take(n int) []byte {
	if s := b.spare; s != nil {
		b.spare = nil
		return s
	}
	return make([]byte, 0, n)
}

// flush sends what is packed. Once SendMsg has returned, gRPC holds
// nothing of the message's buffer (the codec copied it into one of gRPC's
// own, libs/grpcx; no stats handler is registered, and gRPC calls those
// before SendMsg returns anyway): it takes the next message, so that a
// pull writes into memory it has touched, not a new buffer per message.
// Under TISTREAM_DEBUG_POISON=1 it is overwritten first.
func (b *batcher) flush() error {
	if b.events == 0 {
		return nil
	}
	n, err := b.send(&response{b: b.buf})
	rows := b.rows
	b.last = len(b.buf)
	if cap(b.buf) <= 2*b.maxBytes {
		recycle.Poison(b.buf)
		b.spare = b.buf[:0]
	}
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
