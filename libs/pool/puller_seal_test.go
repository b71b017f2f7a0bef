package pool

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// A live puller usually reaches a range's final watermark before the
// range's SEAL: the owner publishes the parent at W, then opens the
// children and seals it, and the children's first publication comes a
// flush later. The puller's resolved ts is then already W when it reads
// the SEAL, and the sealed parent (watermark W, nothing queued) must still
// drop out: kept, it held the resolved ts at W for ever while its
// successors moved on (TestAutoscaleSplitSpreadAndDrain: the schema
// registry's meta follower stuck at the first split, and every pull with
// it).
func TestPullResolvedAtSealBeforeSealIsRead(t *testing.T) {
	f := newSplitFixture(t, 11)
	resolved, _ := f.poll(t)
	require.Equal(t, f.half, resolved, "resolved at the parent's final watermark, its SEAL not written yet")

	// The split, as the meta-server and the sorter do it: the manifest
	// names the children, the children open, the parent is sealed at half.
	require.NoError(t, PublishManifest(ctx, f.store, splitManifest(f.half, f.mid)))
	r2, r3 := createChildren(t, f.g, f.g, f.half, f.mid)
	require.NoError(t, f.r1.Seal(ctx, []uint64{2, 3}))
	// The puller reads the SEAL (and opens the children) before they
	// publish anything: the resolved ts stays at half.
	resolved, _ = f.poll(t)
	require.Equal(t, f.half, resolved)

	f.publishChildren(t, r2, r3)
	f.pullToEnd(t)
}

// splitFixture is range 1 of tenant 1 (every key, opened at 100) in group
// "a", published up to half of its rows, with a puller following the tenant
// from 0; tests split it at table 102 at half.
type splitFixture struct {
	store      objstore.Store
	all        []Row
	half, last uint64
	mid        []byte
	g          *GroupWriter
	r1         *RangeWriter
	p          *Puller
	got        []Row
}

func newSplitFixture(t *testing.T, seed uint64) *splitFixture {
	t.Helper()
	f := &splitFixture{store: objstore.NewMemory(), mid: tidbcodec.TablePrefix(102)}
	f.all = genRows(rand.New(rand.NewPCG(seed, seed)), 600, []int64{100, 101, 102, 103}, 100)
	f.half, f.last = f.all[len(f.all)/2].CommitTs, f.all[len(f.all)-1].CommitTs
	require.NoError(t, PublishManifest(ctx, f.store, singleRangeManifest(1)))
	f.g = newGroup(t, f.store, 1, "a")
	var err error
	f.r1, err = CreateRange(ctx, f.g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	publish(t, f.r1, f.all, []uint64{f.half})
	f.p, err = NewPuller(ctx, f.store, 1, nil, nil, nil, 0)
	require.NoError(t, err)
	return f
}

// poll polls the puller once, keeping the rows.
func (f *splitFixture) poll(t *testing.T) (resolved uint64, caughtUp bool) {
	t.Helper()
	rows, resolved, caughtUp, err := f.p.Poll(ctx)
	require.NoError(t, err)
	f.got = append(f.got, rows...)
	return resolved, caughtUp
}

// publishChildren publishes the children's rows (above half) up to last.
func (f *splitFixture) publishChildren(t *testing.T, r2, r3 *RangeWriter) {
	t.Helper()
	lrows, rrows := splitRows(f.all, f.mid)
	publish(t, r2, lrows, []uint64{f.last})
	publish(t, r3, rrows, []uint64{f.last})
}

// pullToEnd polls until the resolved ts reaches last and checks that every
// row came once, in order.
func (f *splitFixture) pullToEnd(t *testing.T) {
	t.Helper()
	var resolved uint64
	for i := 0; i < 100 && resolved < f.last; i++ {
		resolved, _ = f.poll(t)
	}
	require.Equal(t, f.last, resolved)
	require.Equal(t, len(f.all), len(f.got), "every row once")
	for i := range f.all {
		require.Equal(t, 0, Compare(&f.all[i], &f.got[i]), "row %d", i)
	}
}

// splitManifest is version 2 of tenant 1's manifest after range 1 (every
// key, opened at 100) split at key mid at ts at into 2 (below) and 3.
func splitManifest(at uint64, mid []byte) *formatv1.Manifest {
	return &formatv1.Manifest{TenantId: 1, Version: 2, NextRangeId: 4, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_RETIRED, OpenedAtTs: 100, RetiredAtTs: at, SuccessorRangeIds: []uint64{2, 3}},
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_ACTIVE, EndKey: mid, OpenedAtTs: at, ParentRangeIds: []uint64{1}},
		{RangeId: 3, State: formatv1.RangeDescriptor_STATE_ACTIVE, StartKey: mid, OpenedAtTs: at, ParentRangeIds: []uint64{1}},
	}}
}

// createChildren opens splitManifest's children: 2 in group left, 3 in
// group right.
func createChildren(t *testing.T, left, right *GroupWriter, at uint64, mid []byte) (r2, r3 *RangeWriter) {
	t.Helper()
	r2, err := CreateRange(ctx, left, RangeSpec{Tenant: 1, RangeID: 2, End: mid, OpenedAt: at, Parents: []uint64{1}}, 1)
	require.NoError(t, err)
	r3, err = CreateRange(ctx, right, RangeSpec{Tenant: 1, RangeID: 3, Start: mid, OpenedAt: at, Parents: []uint64{1}}, 1)
	require.NoError(t, err)
	return r2, r3
}
