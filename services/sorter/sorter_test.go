package sorter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

const tenant = 9

// The two files of store 1 every test starts with: two rows prewritten in
// file 1 and committed in file 2, one row committed at once and one delete,
// resolved to 130.
func file1() []*sorterv1.Event {
	return []*sorterv1.Event{regionStart(), prewrite(1, "v1", 100), prewrite(2, "v2", 100), resolvedAt(99)}
}

func file2() []*sorterv1.Event {
	return []*sorterv1.Event{commit(1, 100, 110), commit(2, 100, 110), committed(3, "v3", 115, 120),
		deleted(1, 121, 125), resolvedAt(130)}
}

var rows12 = []string{"1@110 OP_PUT=v1", "2@110 OP_PUT=v2", "3@120 OP_PUT=v3", "1@125 OP_DELETE="}

func TestWorkerRegistration(t *testing.T) {
	e := newEnv(t)
	s := e.startSorter("s1")
	info := &metav1.WorkerInfo{}
	found, _, err := etcdx.GetProto(context.Background(), e.cli, etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s1"), info)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, s.GRPCAddr(), info.Addr)
	require.Equal(t, metav1.WorkerKind_WORKER_KIND_SORTER, info.Kind)
	stopSorter(t, s)
	found, _, err = etcdx.GetProto(context.Background(), e.cli, etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s1"), info)
	require.NoError(t, err)
	require.False(t, found, "a stopped sorter revokes its lease")
}

// (1) and (2): an assigned range is taken (created: no log yet), the
// batches sent over Ingest are published to the pool exactly, and Durable
// arrives after a snapshot for the store's position.
func TestIngestFlushAndDurable(t *testing.T) {
	e := newEnv(t)
	_, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))
	f.waitDurable(tenant, 1, 1, 2)
	for _, d := range f.acks() {
		require.Equal(t, uint64(tenant), d.TenantId)
		require.Equal(t, uint64(1), d.RangeId)
		require.Equal(t, uint64(1), d.StoreId)
		require.LessOrEqual(t, d.Seq, uint64(2))
	}
	require.Empty(t, f.refusals())

	// A redelivery is skipped (nothing published twice) and acknowledged
	// again from the last snapshot.
	n := len(f.acks())
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Eventually(t, func() bool { return len(f.acks()) > n }, waitFor, pollEvery)
	rows, wm := e.published(tenant, 1)
	require.Equal(t, rows12, rows)
	require.Equal(t, uint64(130), wm)

	// A second store feeds the same range (the region's resolved ts comes
	// from its leader, store 1).
	f.send(tenant, 2, 1, 1, 1, committed(4, "v4", 131, 135))
	f.send(tenant, 1, 3, 1, 1, resolvedAt(140))
	require.Equal(t, append(rows12, "4@135 OP_PUT=v4"), e.waitPublished(tenant, 1, 140))
	f.waitDurable(tenant, 1, 2, 1)
}

// (3): batches for a range this sorter does not own, or at another epoch,
// are refused with NotOwner and not applied; a refusal is sticky until the
// dispatcher resends from at or below the refused file.
func TestNotOwner(t *testing.T) {
	e := newEnv(t)
	s := e.startSorter("s1")
	e.putTask(tenant, 1, "s1", 1)
	e.putTask(tenant, 2, "other", 1)
	waitTaken(t, s, tenant, 1, 1)

	f := openFeeder(t, s.GRPCAddr())
	f.send(tenant, 1, 1, 2, 1, file1()...) // another sorter's range
	f.waitNotOwner(tenant, 2, 1, 1)
	f.send(tenant, 1, 1, 3, 1, file1()...) // no such range
	f.waitNotOwner(tenant, 3, 1, 1)
	f.send(tenant, 1, 1, 1, 2, file1()...) // wrong epoch
	f.waitNotOwner(tenant, 1, 1, 1)
	// File 2 at the right epoch follows a refused file 1 of the same
	// store: refused too (applying it would skip file 1).
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.waitNotOwner(tenant, 1, 1, 2)
	time.Sleep(200 * time.Millisecond) // several flush intervals
	rows, wm := e.published(tenant, 1)
	require.Empty(t, rows)
	require.Equal(t, uint64(50), wm, "nothing applied: the range is still at its opened-at ts")

	// The dispatcher resends from file 1: accepted.
	n := len(f.refusals())
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))
	f.waitDurable(tenant, 1, 1, 2)
	require.Len(t, f.refusals(), n)
	_, err := e.cli.Get(context.Background(), etcdx.RangeKey(tenant, 2))
	require.NoError(t, err)
}

// A refusal stays sticky until the refused file itself is applied, not
// merely until a lower one arrives: two Ingest streams of one store (a
// dispatcher's broken stream still delivering what it had sent, and the
// re-dialled one resending from the checkpoint) interleave at the sorter.
// The new stream's first resend (file 1, below the refused file 2) must not
// let the old stream's file 3 in ahead of file 2: the range would then
// drop file 2 as a duplicate and lose its rows (a cold CI run froze a range
// in TestNetworkFaults with a START missing after such a restart).
func TestRefusalStickyUntilRefusedFileApplied(t *testing.T) {
	e := newEnv(t)
	_, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 2, file2()...) // wrong epoch: refused, sticky at 2
	f.waitNotOwner(tenant, 1, 1, 2)
	f.send(tenant, 1, 1, 1, 1, file1()...) // the resend from the checkpoint: a duplicate
	file3 := []*sorterv1.Event{committed(4, "v4", 135, 140), resolvedAt(150)}
	f.send(tenant, 1, 3, 1, 1, file3...) // the old stream's file 3, ahead of file 2
	f.waitNotOwner(tenant, 1, 1, 3)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.send(tenant, 1, 3, 1, 1, file3...)
	want := append(append([]string(nil), rows12...), "4@140 OP_PUT=v4")
	require.Equal(t, want, e.waitPublished(tenant, 1, 150))
	f.waitDurable(tenant, 1, 1, 3)
}

// readFailer is a pool whose reads fail while fail is set (an object
// store outage, for reads only).
type readFailer struct {
	objstore.Store
	fail atomic.Bool
}

var errReadOutage = errors.New("test: the object store is unreachable")

func (f *readFailer) Get(ctx context.Context, key string) ([]byte, error) {
	if f.fail.Load() {
		return nil, errReadOutage
	}
	return f.Store.Get(ctx, key)
}

func (f *readFailer) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if f.fail.Load() {
		return nil, errReadOutage
	}
	return f.Store.GetRange(ctx, key, off, n)
}

func (f *readFailer) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	if f.fail.Load() {
		return nil, false, errReadOutage
	}
	return f.Store.List(ctx, prefix, startAfter, limit)
}

// A range taken again from its snapshot after a failed batch of one store
// has gone back on the other stores too: a later file of another store,
// sent on by a dispatcher that does not know, names (prev_seq) the file
// before it for the range, which the range no longer has; it is refused
// (not applied with a gap, losing that file's events), and the resend from
// the checkpoint brings everything.
func TestRetakenRangeRefusesAGap(t *testing.T) {
	e := newEnv(t)
	pool := &readFailer{Store: e.pool}
	e.pool = pool
	// No snapshot: the range is taken again from its log alone, with no
	// store positions.
	s := e.startSorterWith("s1", func(c *Config) { c.SnapshotInterval = time.Hour })
	e.putTask(tenant, 1, "s1", 1)
	waitTaken(t, s, tenant, 1, 1)
	h := s.lookup(rangeKey{tenant, 1})
	taken := func() *rangesorter.Range {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.r
	}

	f := openFeeder(t, s.GRPCAddr())
	f.sendBatches(1, 1, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file1()})
	f.sendBatches(1, 2, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file2(), PrevSeq: 1})
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))
	before := taken()

	// Store 2's file 1 has a commit below the published watermark: the
	// range reads the pool to check it, the read fails, the batch is half
	// applied, and the range is taken again.
	pool.fail.Store(true)
	f.sendBatches(2, 1, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: []*sorterv1.Event{committed(9, "x", 100, 125)}})
	f.waitNotOwner(tenant, 1, 2, 1)
	pool.fail.Store(false)
	require.Eventually(t, func() bool { r := taken(); return r != nil && r != before }, waitFor, pollEvery, "the range was not taken again")
	require.Empty(t, taken().Applied(), "taken again from its log alone: no store positions")

	// Store 1's file 3, from the same run (it follows file 2 for the
	// range): refused, the range has not applied file 2 any more.
	file3 := []*sorterv1.Event{committed(4, "v4", 135, 140), resolvedAt(150)}
	f.sendBatches(1, 3, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file3, PrevSeq: 2})
	f.waitNotOwner(tenant, 1, 1, 3)
	require.Empty(t, taken().Applied(), "file 3 applied after the range went back")

	// The dispatcher's next run resends from its checkpoint (none yet).
	f.sendBatches(1, 1, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file1()})
	f.sendBatches(1, 2, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file2(), PrevSeq: 1})
	f.sendBatches(1, 3, &sorterv1.RangeBatch{RangeId: 1, RangeEpoch: 1, Events: file3, PrevSeq: 2})
	want := append(append([]string(nil), rows12...), "4@140 OP_PUT=v4")
	require.Equal(t, want, e.waitPublished(tenant, 1, 150))
	time.Sleep(100 * time.Millisecond)
	rows, _ := e.published(tenant, 1)
	require.Equal(t, want, rows, "nothing published twice")
}

// (4): the range moves to another sorter with epoch+1: the new owner
// restores it from the old one's snapshot and continues; the old owner
// drops it and refuses its batches.
func TestReassign(t *testing.T) {
	e := newEnv(t)
	a := e.startSorter("a")
	b := e.startSorter("b")
	e.putTask(tenant, 1, "a", 1)
	waitTaken(t, a, tenant, 1, 1)

	fa := openFeeder(t, a.GRPCAddr())
	fa.send(tenant, 1, 1, 1, 1, file1()...)
	fa.send(tenant, 1, 2, 1, 1, file2()...)
	fa.waitDurable(tenant, 1, 1, 2) // checkpoint: store 1 up to file 2
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))
	// File 3 reaches a and may or may not be in a snapshot when the range
	// moves; prewrite 5 stays pending across the move.
	file3 := []*sorterv1.Event{prewrite(4, "v4", 140), commit(4, 140, 145), prewrite(5, "v5", 148), resolvedAt(147)}
	fa.send(tenant, 1, 3, 1, 1, file3...)
	e.waitPublished(tenant, 1, 147)

	e.putTask(tenant, 1, "b", 2)
	waitTaken(t, b, tenant, 1, 2)
	require.Eventually(t, func() bool { return a.lookup(rangeKey{tenant, 1}) == nil }, waitFor, pollEvery, "a still holds the range")
	fa.send(tenant, 1, 4, 1, 1, commit(5, 148, 150), resolvedAt(160))
	fa.waitNotOwner(tenant, 1, 1, 4)

	// The dispatcher restarts from its checkpoint (file 2) on b.
	fb := openFeeder(t, b.GRPCAddr())
	fb.send(tenant, 1, 3, 1, 2, file3...)
	fb.send(tenant, 1, 4, 1, 2, commit(5, 148, 150), resolvedAt(160))
	want := append(append([]string(nil), rows12...), "4@145 OP_PUT=v4", "5@150 OP_PUT=v5")
	require.Equal(t, want, e.waitPublished(tenant, 1, 160))
	fb.waitDurable(tenant, 1, 1, 4)
	require.Empty(t, fb.refusals())
	time.Sleep(100 * time.Millisecond)
	rows, wm := e.published(tenant, 1)
	require.Equal(t, want, rows, "nothing published twice")
	require.Equal(t, uint64(160), wm)
}

// A commit that comes before its prewrite waits in the matcher across
// requests: the request that carried it is released (and, in these tests,
// poisoned: TestMain) and its buffer reused for the next ones before the
// prewrite arrives, so what the waiting commit keeps must be its own copy.
// Kept as a slice of the request, its key would read as the poison, the
// prewrite would not find it, and the range would never publish past it.
func TestCommitWaitsAcrossRequestsForItsPrewrite(t *testing.T) {
	e := newEnv(t)
	_, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, regionStart(), commit(1, 100, 110), resolvedAt(99))
	for seq := uint64(2); seq < 6; seq++ { // requests of the same size reuse the buffer
		f.send(tenant, 1, seq, 1, 1, regionStart(), committed(int64(10+seq), "filler", 50, 60+seq), resolvedAt(99))
	}
	f.send(tenant, 1, 6, 1, 1, prewrite(1, "v1", 100), resolvedAt(130))
	require.Equal(t, []string{"12@62 OP_PUT=filler", "13@63 OP_PUT=filler", "14@64 OP_PUT=filler", "15@65 OP_PUT=filler", "1@110 OP_PUT=v1"},
		e.waitPublished(tenant, 1, 130))
}
