package dispatcher

import (
	"fmt"
	"hash/fnv"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// rangeStore names one range's view of one store.
type rangeStore struct{ rangeID, store uint64 }

// recvBatch is one range batch a fake sorter received.
type recvBatch struct {
	dispatcher string
	store, seq uint64
	rangeID    uint64
	epoch      uint64
	prevSeq    uint64
	events     int
	digest     string
	refused    bool
}

// eventsDigest summarises a batch's events (kind, incarnation, keys, values,
// timestamps), so a test can compare them with its own routing.
func eventsDigest(evs []*sorterv1.Event) string {
	h := fnv.New64a()
	for _, e := range evs {
		fmt.Fprintf(h, "%d|%d.%d.%d|%x|%x|%d|", e.Kind, e.Inc.GetRegionId(), e.Inc.GetVersion(), e.Inc.GetTerm(), e.StartKey, e.EndKey, e.Ts)
		if r := e.Row; r != nil {
			fmt.Fprintf(h, "%x|%x|%x|%d|%d|", r.Key, r.Value, r.OldValue, r.StartTs, r.CommitTs)
		}
		for _, p := range e.Preds {
			fmt.Fprintf(h, "p%d.%d.%d|", p.RegionId, p.Version, p.Term)
		}
		for _, p := range e.Refs {
			fmt.Fprintf(h, "r%d.%d.%d|", p.RegionId, p.Version, p.Term)
		}
		h.Write([]byte{';'})
	}
	return fmt.Sprintf("%d:%016x", len(evs), h.Sum64())
}

// fakeSorter implements SorterService.Ingest like a sorter would, minus the
// sorting: it accepts batches of the ranges it owns at their epoch (skipping
// redeliveries at or below what it applied), refuses others with NotOwner,
// and every ackEvery sends Durable for what it applied (up to ackLimit per
// store when set). A refusal is sticky per (range, store) until a resend at
// or below the refused seq arrives, and a batch whose prev_seq the range
// has not applied is refused, as fleet.md requires of sorters.
type fakeSorter struct {
	sorterv1.UnimplementedSorterServiceServer
	addr string
	srv  *grpc.Server

	mu       sync.Mutex
	owned    map[uint64]uint64 // range -> epoch accepted
	refuseN  map[uint64]int    // range -> batches still to refuse (simulates "not taken yet")
	sticky   map[rangeStore]uint64
	applied  map[rangeStore]uint64
	order    map[rangeStore][]uint64 // accepted seqs in apply order
	got      []recvBatch
	acksOn   bool
	ackLimit map[uint64]uint64 // store -> highest seq to ack (absent = no limit)
	gate     chan struct{}     // non-nil: Recv waits until it is closed
	// retakeAt: range -> position; the range's next batch fails to apply,
	// so the range is taken again from its snapshot at that position (at
	// the same epoch) and the batch is refused, as a sorter does after a
	// half-applied batch.
	retakeAt map[uint64]uint64
	brk      chan struct{} // closed by breakStreams: every open Ingest stream ends
}

func newFakeSorter(t *testing.T, owned map[uint64]uint64) *fakeSorter {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeSorter{addr: lis.Addr().String(), srv: grpc.NewServer(), owned: owned,
		refuseN: map[uint64]int{}, sticky: map[rangeStore]uint64{}, applied: map[rangeStore]uint64{},
		order: map[rangeStore][]uint64{}, acksOn: true, ackLimit: map[uint64]uint64{},
		retakeAt: map[uint64]uint64{}, brk: make(chan struct{})}
	sorterv1.RegisterSorterServiceServer(f.srv, f)
	go func() { _ = f.srv.Serve(lis) }()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSorter) Ingest(stream grpc.BidiStreamingServer[sorterv1.IngestRequest, sorterv1.IngestResponse]) error {
	ctx := stream.Context()
	var sendMu sync.Mutex
	send := func(resp *sorterv1.IngestResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(resp)
	}
	go f.ackLoop(ctx.Done(), send)
	f.mu.Lock()
	brk := f.brk
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.recvLoop(stream, send)
	}()
	select {
	case <-done:
		return nil
	case <-brk:
		return status.Error(codes.Unavailable, "fake sorter broke the stream")
	}
}

// breakStreams ends every Ingest stream open now (the dispatcher sees its
// connection break).
func (f *fakeSorter) breakStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.brk)
	f.brk = make(chan struct{})
}

func (f *fakeSorter) recvLoop(stream grpc.BidiStreamingServer[sorterv1.IngestRequest, sorterv1.IngestResponse], send func(*sorterv1.IngestResponse) error) {
	ctx := stream.Context()
	for {
		f.mu.Lock()
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return
			}
		}
		req, err := stream.Recv()
		if err != nil {
			return
		}
		if refused := f.ingest(req); len(refused) > 0 {
			if err := send(&sorterv1.IngestResponse{NotOwner: refused}); err != nil {
				return
			}
		}
	}
}

func (f *fakeSorter) ingest(req *sorterv1.IngestRequest) []*sorterv1.NotOwner {
	f.mu.Lock()
	defer f.mu.Unlock()
	var refused []*sorterv1.NotOwner
	for _, b := range req.Batches {
		rs := rangeStore{b.RangeId, req.StoreId}
		rb := recvBatch{dispatcher: req.Dispatcher, store: req.StoreId, seq: req.Seq, rangeID: b.RangeId, epoch: b.RangeEpoch, prevSeq: b.PrevSeq,
			events: len(b.Events), digest: eventsDigest(b.Events)}
		if pos, ok := f.retakeAt[b.RangeId]; ok && f.owned[b.RangeId] == b.RangeEpoch {
			delete(f.retakeAt, b.RangeId)
			f.applied[rs] = pos
			var kept []uint64
			for _, q := range f.order[rs] {
				if q <= pos {
					kept = append(kept, q)
				}
			}
			f.order[rs] = kept
			f.refuseN[b.RangeId]++ // this batch
		}
		stuck, isSticky := f.sticky[rs]
		if isSticky && req.Seq <= stuck {
			delete(f.sticky, rs)
			isSticky = false
		}
		gap := b.PrevSeq > f.applied[rs] && req.Seq > f.applied[rs]
		if f.owned[b.RangeId] != b.RangeEpoch || f.refuseN[b.RangeId] > 0 || isSticky || gap {
			if f.refuseN[b.RangeId] > 0 {
				f.refuseN[b.RangeId]--
			}
			if !isSticky {
				f.sticky[rs] = req.Seq
			}
			rb.refused = true
			refused = append(refused, &sorterv1.NotOwner{TenantId: req.TenantId, RangeId: b.RangeId, StoreId: req.StoreId, Seq: req.Seq})
		} else if req.Seq > f.applied[rs] {
			f.applied[rs] = req.Seq
			f.order[rs] = append(f.order[rs], req.Seq)
		}
		f.got = append(f.got, rb)
	}
	return refused
}

// ackLoop plays the sorter's snapshots: every few milliseconds, Durable for
// every (range, store) applied further than last acknowledged.
func (f *fakeSorter) ackLoop(done <-chan struct{}, send func(*sorterv1.IngestResponse) error) {
	acked := map[rangeStore]uint64{}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		f.mu.Lock()
		var resp sorterv1.IngestResponse
		for rs, seq := range f.applied {
			if lim, ok := f.ackLimit[rs.store]; ok {
				seq = min(seq, lim)
			}
			if f.acksOn && seq > acked[rs] {
				acked[rs] = seq
				resp.Durable = append(resp.Durable, &sorterv1.Durable{TenantId: 1, RangeId: rs.rangeID, StoreId: rs.store, Seq: seq})
			}
		}
		f.mu.Unlock()
		if len(resp.Durable) > 0 && send(&resp) != nil {
			return
		}
	}
}

func (f *fakeSorter) set(fn func(f *fakeSorter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeSorter) received() []recvBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recvBatch(nil), f.got...)
}

func (f *fakeSorter) appliedOrder(rangeID, store uint64) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.order[rangeStore{rangeID, store}]...)
}
