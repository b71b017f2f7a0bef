package sorter

import (
	"errors"
	"io"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/route/routepb"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// api serves SorterService.
type api struct {
	sorterv1.UnimplementedSorterServiceServer
	s *Service
}

// ingestStream is one dispatcher's Ingest stream. Responses are queued
// (coalesced) and sent by the handler's goroutine, so neither a range's
// snapshot loop nor the apply loop blocks on a slow receiver.
type ingestStream struct {
	closed bool // guarded by Service.mu: the handler returned

	mu       sync.Mutex
	durable  map[rangeStore]uint64
	notOwner []*sorterv1.NotOwner
	kick     chan struct{}
}

func (is *ingestStream) queueDurable(d *sorterv1.Durable) {
	is.mu.Lock()
	k := rangeStore{rangeKey{d.TenantId, d.RangeId}, d.StoreId}
	is.durable[k] = max(is.durable[k], d.Seq)
	is.mu.Unlock()
	poke(is.kick)
}

func (is *ingestStream) queueNotOwner(n []*sorterv1.NotOwner) {
	is.mu.Lock()
	is.notOwner = append(is.notOwner, n...)
	is.mu.Unlock()
	poke(is.kick)
}

// take empties the queue into one response (nil when empty).
func (is *ingestStream) take() *sorterv1.IngestResponse {
	is.mu.Lock()
	defer is.mu.Unlock()
	if len(is.durable) == 0 && len(is.notOwner) == 0 {
		return nil
	}
	resp := &sorterv1.IngestResponse{NotOwner: is.notOwner}
	for k, seq := range is.durable {
		resp.Durable = append(resp.Durable, &sorterv1.Durable{TenantId: k.tenant, RangeId: k.id, StoreId: k.store, Seq: seq})
	}
	is.durable = map[rangeStore]uint64{}
	is.notOwner = nil
	return resp
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Ingest applies the stream's requests in order and sends back NotOwner
// refusals and Durable acknowledgements.
func (a *api) Ingest(stream grpc.BidiStreamingServer[sorterv1.IngestRequest, sorterv1.IngestResponse]) error {
	s := a.s
	is := &ingestStream{durable: map[rangeStore]uint64{}, kick: make(chan struct{}, 1)}
	s.m.ingestStream.Inc()
	defer s.m.ingestStream.Dec()
	defer s.forgetStream(is)
	recvErr := make(chan error, 1)
	go func() {
		for {
			// Decoded by the codec straight into routed events, rows
			// pointing into the request's bytes (routepb.Received).
			req := &routepb.Received{}
			err := stream.RecvMsg(req)
			if err != nil {
				recvErr <- err
				return
			}
			no := s.ingest(is, req)
			// Applied: what the ranges keep of it they copied, and its
			// bytes and arrays decode the next requests.
			req.Release()
			if len(no) > 0 {
				is.queueNotOwner(no)
			}
		}
	}()
	for {
		select {
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				// The dispatcher closed its side: answer what is queued.
				if resp := is.take(); resp != nil {
					return stream.Send(resp)
				}
				return nil
			}
			if status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		case <-s.rootCtx.Done():
			return status.Error(codes.Unavailable, "sorter is stopping")
		case <-is.kick:
			if resp := is.take(); resp != nil {
				if err := stream.Send(resp); err != nil {
					return err
				}
			}
		}
	}
}

// ingest applies one request's batches; it returns the refused ones, in
// the request's order. The batches of different ranges are applied in
// parallel on the worker pool (work.go), each range's in the request's
// order, and ingest returns once all are done: the stream's next request
// is applied after this one, so every range sees each store's files in
// the stream's order, and a refusal (sticky, admit) is recorded before the
// range sees the store's next file. The first batch is applied on the
// stream's goroutine meanwhile (it would only wait otherwise), unless its
// range has a later batch in the request, which must not overtake it.
func (s *Service) ingest(is *ingestStream, req *routepb.Received) []*sorterv1.NotOwner {
	if d := s.throttle.Wait(s.rootCtx, rangesorter.MaxWriteStall); d > 0 {
		s.m.writeStalls.Inc()
		s.m.writeStalled.Add(d.Seconds())
	}
	ts := tenantStore{req.TenantID, req.StoreID}
	s.mu.Lock()
	if !is.closed {
		f := s.feeders[ts]
		if f == nil {
			f = map[*ingestStream]struct{}{}
			s.feeders[ts] = f
		}
		f[is] = struct{}{}
	}
	s.mu.Unlock()
	bs := req.Batches
	ok := make([]bool, len(bs))
	inline := len(bs) > 0 && !slices.ContainsFunc(bs[1:], func(b routepb.ReceivedBatch) bool { return b.RangeID == bs[0].RangeID })
	var r *round
	for i := range bs {
		if i == 0 && inline {
			continue
		}
		if r == nil {
			r = s.newRound()
		}
		r.run(rangeKey{req.TenantID, bs[i].RangeID}, func() { ok[i] = s.applyBatch(req, &bs[i]) })
	}
	if inline {
		ok[0] = s.applyBatch(req, &bs[0])
	}
	if r != nil {
		r.wait()
	}
	var refused []*sorterv1.NotOwner
	for i, b := range bs {
		if !ok[i] {
			refused = append(refused, &sorterv1.NotOwner{TenantId: req.TenantID, RangeId: b.RangeID, StoreId: req.StoreID, Seq: req.Seq})
		}
	}
	return refused
}

// applyBatch applies one range batch of req if this sorter owns the range
// at the batch's epoch and admits it; otherwise it records the refusal
// (sticky) and reports false.
func (s *Service) applyBatch(req *routepb.Received, b *routepb.ReceivedBatch) bool {
	k := rangeKey{req.TenantID, b.RangeID}
	if h := s.lookup(k); h != nil && h.epoch == b.RangeEpoch && h.apply(req.StoreID, req.Seq, req.MaxTs, b) {
		return true
	}
	s.refuse(rangeStore{k, req.StoreID}, req.Seq)
	s.m.batches.WithLabelValues("not_owner").Inc()
	return false
}

// admit applies the sticky refusal rule: after refusing file q of a store
// for a range, later files of that store are refused until the range has
// applied q (the dispatcher resent from its checkpoint, or a restored
// position has it): applying a later file first would lose q's events.
// Files at or below q are let in meanwhile (the resend that brings q). The
// rule ends only once q is applied, not at the first lower file: a store's
// files can come on two Ingest streams at once (a broken stream's last
// requests and the re-dialled one's resend), and a later file of the old
// stream must not slip in between the resend's first file and q. applied
// is the range's position for the store.
func (s *Service) admit(rs rangeStore, seq, applied uint64) bool {
	s.stickyMu.Lock()
	defer s.stickyMu.Unlock()
	q, ok := s.sticky[rs]
	switch {
	case !ok:
		return true
	case applied >= q:
		delete(s.sticky, rs)
		return true
	}
	return seq <= q
}

// refuse records a refusal for admit (the lowest refused file counts).
func (s *Service) refuse(rs rangeStore, seq uint64) {
	s.stickyMu.Lock()
	defer s.stickyMu.Unlock()
	if q, ok := s.sticky[rs]; !ok || seq < q {
		s.sticky[rs] = seq
	}
}

// forgetStream removes a closed stream from the feeders.
func (s *Service) forgetStream(is *ingestStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is.closed = true
	for ts, f := range s.feeders {
		delete(f, is)
		if len(f) == 0 {
			delete(s.feeders, ts)
		}
	}
}

// sendDurable queues acknowledgements on the streams that fed their stores.
func (s *Service) sendDurable(acks []*sorterv1.Durable) {
	if len(acks) == 0 {
		return
	}
	s.mu.Lock()
	var targets [][]*ingestStream
	for _, d := range acks {
		var t []*ingestStream
		for is := range s.feeders[tenantStore{d.TenantId, d.StoreId}] {
			t = append(t, is)
		}
		targets = append(targets, t)
	}
	s.mu.Unlock()
	for i, d := range acks {
		for _, is := range targets[i] {
			is.queueDurable(d)
			s.m.durable.Inc()
		}
	}
}

func unmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }
