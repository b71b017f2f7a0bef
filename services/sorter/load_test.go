package sorter

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

func rowEvents(keys ...[]byte) []route.Event {
	evs := make([]route.Event, len(keys))
	for i, k := range keys {
		evs[i] = route.Event{Kind: route.KindRow, Row: &cdcpb.Event_Row{Key: k, Value: []byte("v")}}
	}
	return evs
}

// The sampler's proposal halves the rows, snaps to a table boundary when
// the sample spans tables, and is never the start key or outside the range.
func TestSplitKey(t *testing.T) {
	rec := tidbcodec.EncodeRecordKey
	t.Run("uniform keys of one table: near the median", func(t *testing.T) {
		var l loadTracker
		for h := int64(0); h < 10_000; h++ {
			l.observe(1, rowEvents(rec(5, h)))
		}
		require.Equal(t, int64(10_000), l.rows)
		require.Len(t, l.sample.keys, sampleSize)
		k := splitKey(l.sample.keys, tidbcodec.TablePrefix(5), tidbcodec.TablePrefix(6))
		require.NotNil(t, k)
		_, h, err := tidbcodec.DecodeRecordKey(k)
		require.NoError(t, err)
		require.InDelta(t, 5000, h, 2000, "the median of a uniform sample")
	})
	t.Run("a sample spanning tables: the boundary that halves it", func(t *testing.T) {
		var sample [][]byte
		for h := int64(0); h < 30; h++ {
			sample = append(sample, rec(5, h), rec(7, h))
		}
		sample = append(sample, rec(9, 1))
		k := splitKey(sample, nil, nil)
		require.Equal(t, tidbcodec.TablePrefix(7), k)
	})
	t.Run("one hot table among cold ones: cut inside it", func(t *testing.T) {
		var sample [][]byte
		for h := int64(0); h < 60; h++ {
			sample = append(sample, rec(7, h))
		}
		sample = append(sample, rec(5, 1), rec(5, 2), rec(8, 1))
		k := splitKey(sample, nil, nil)
		id, h, err := tidbcodec.DecodeRecordKey(k)
		require.NoError(t, err)
		require.Equal(t, int64(7), id)
		require.InDelta(t, 30, h, 3)
	})
	t.Run("never the start key, never outside", func(t *testing.T) {
		start, end := rec(5, 100), rec(5, 200)
		same := make([][]byte, 20)
		for i := range same {
			same[i] = start
		}
		require.Nil(t, splitKey(same, start, end), "every sampled key is the start key")
		out := [][]byte{rec(4, 1), rec(4, 2), rec(6, 1), rec(6, 2), rec(6, 3), rec(6, 4), rec(6, 5), rec(6, 6), rec(6, 7)}
		require.Nil(t, splitKey(out, start, end), "keys outside the range are ignored")
		few := [][]byte{rec(5, 150), rec(5, 160)}
		require.Nil(t, splitKey(few, start, end), "too few keys")
		mixed := append([][]byte{start, start, start, start, start}, rec(5, 150), rec(5, 160), rec(5, 170))
		k := splitKey(mixed, start, end)
		require.Equal(t, rec(5, 150), k, "the next larger key when the median is the start key")
		for _, kk := range [][]byte{k} {
			require.Positive(t, bytes.Compare(kk, start))
			require.Negative(t, bytes.Compare(kk, end))
		}
	})
	t.Run("non-table keys", func(t *testing.T) {
		var sample [][]byte
		for i := 0; i < 40; i++ {
			sample = append(sample, []byte{'m', byte(i)})
		}
		k := splitKey(sample, nil, nil)
		require.Equal(t, []byte{'m', 20}, k)
	})
}

// The reservoir stays uniform: keys from the first and the second half of
// a long interval are sampled about equally.
func TestKeySamplerUniform(t *testing.T) {
	var s keySampler
	const n = 100_000
	for i := 0; i < n; i++ {
		s.observe(tidbcodec.EncodeRecordKey(1, int64(i)))
	}
	firstHalf := 0
	for _, k := range s.keys {
		_, h, err := tidbcodec.DecodeRecordKey(k)
		require.NoError(t, err)
		if h < n/2 {
			firstHalf++
		}
	}
	require.InDelta(t, sampleSize/2, firstHalf, sampleSize/4)
	s.reset()
	require.Empty(t, s.keys)
}

// Rows are counted, non-row events are not.
func TestLoadTrackerCountsRows(t *testing.T) {
	var l loadTracker
	evs := append(rowEvents([]byte("k1"), []byte("k2")), route.Event{Kind: route.KindResolved, Ts: 5})
	l.observe(42, evs)
	require.Equal(t, int64(2), l.rows)
	require.Equal(t, int64(2*(2+1)), l.bytes)
	require.Equal(t, uint64(42), l.maxTs)
}

// A held range under load reports rows, bytes, CPU share, pool bytes and
// what it holds; an idle interval reports no rates, and once everything is
// published it holds nothing. The WorkerInfo carries them and the process's
// CPU share and resident set.
func TestLoadReportsCPUMemoryAndPoolBytes(t *testing.T) {
	e := newEnv(t)
	s := e.startSorterWith("s1", func(c *Config) { c.LoadInterval = time.Hour }) // the test measures by itself
	e.putTask(tenant, 1, "s1", 1)
	waitTaken(t, s, tenant, 1, 1)
	h := s.lookup(rangeKey{tenant, 1})
	h.measure(time.Now()) // starts the interval

	f := openFeeder(t, s.GRPCAddr())
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	// An open transaction: its prewrite stays in the matcher.
	f.send(tenant, 1, 3, 1, 1, prewrite(5, "v5", 140), resolvedAt(139))
	e.waitPublished(tenant, 1, 139)
	busy := h.measure(time.Now())
	require.Positive(t, busy.RowsPerSec)
	require.Positive(t, busy.BytesPerSec)
	require.Positive(t, busy.CpuShare, "applies and flushes take time")
	require.Less(t, busy.CpuShare, 1.0)
	require.Positive(t, busy.PoolBytesPerSec, "data files were published")
	require.Positive(t, busy.MemoryBytes, "the open prewrite is held")

	time.Sleep(50 * time.Millisecond) // publish rounds run meanwhile, with nothing to flush
	idle := h.measure(time.Now())
	require.Zero(t, idle.RowsPerSec)
	require.Zero(t, idle.BytesPerSec)
	require.Zero(t, idle.CpuShare)
	require.Zero(t, idle.PoolBytesPerSec)
	require.Equal(t, busy.MemoryBytes, idle.MemoryBytes, "still held")

	f.send(tenant, 1, 4, 1, 1, commit(5, 140, 145), resolvedAt(150))
	e.waitPublished(tenant, 1, 150)
	h.measure(time.Now())
	require.Zero(t, h.measure(time.Now()).MemoryBytes, "everything published: nothing held")

	// The WorkerInfo: two reports, with CPU spent in between.
	reg := s.worker.Get()
	s.publishLoad(context.Background(), reg, time.Now())
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	s.publishLoad(context.Background(), reg, time.Now())
	info := &metav1.WorkerInfo{}
	found, _, err := etcdx.GetProto(context.Background(), e.cli, etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s1"), info)
	require.NoError(t, err)
	require.True(t, found)
	require.Positive(t, info.ProcessCpuShare)
	require.Positive(t, info.RssBytes)
	require.Len(t, info.Ranges, 1)
	require.Zero(t, info.Ranges[0].CpuShare)
}

// A sorter registers with its load interval, and a range's first load
// interval runs from its take: a report a moment
// after the take leaves the range out (its owner has not reported it, so
// the meta-server holds balance moves), and the first rate is over the
// time since the take, not over a whole --load-interval (which made a
// range just taken, after a restart or a move, read as nearly idle).
func TestLoadFirstIntervalStartsAtTake(t *testing.T) {
	e := newEnv(t)
	s := e.startSorterWith("s1", func(c *Config) { c.LoadInterval = time.Hour })
	e.putTask(tenant, 1, "s1", 1)
	waitTaken(t, s, tenant, 1, 1)
	reg := s.worker.Get()
	info := func() *metav1.WorkerInfo {
		info := &metav1.WorkerInfo{}
		found, _, err := etcdx.GetProto(context.Background(), e.cli, etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s1"), info)
		require.NoError(t, err)
		require.True(t, found)
		return info
	}
	require.Equal(t, time.Hour.Milliseconds(), info().LoadIntervalMs,
		"registered with its load interval: its ranges are settling, not idle, until its first report")
	s.publishLoad(context.Background(), reg, time.Now())
	require.Empty(t, info().Ranges, "taken less than half an interval ago: not reported yet")

	f := openFeeder(t, s.GRPCAddr())
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.send(tenant, 1, 3, 1, 1, resolvedAt(139))
	e.waitPublished(tenant, 1, 139)
	h := s.lookup(rangeKey{tenant, 1})
	h.load.mu.Lock()
	rows, taken := h.load.rows, h.load.since
	h.load.mu.Unlock()
	require.Positive(t, rows)
	require.False(t, taken.IsZero(), "the interval starts at the take")
	rl := h.measure(taken.Add(2 * time.Second))
	require.InDelta(t, float64(rows)/2, rl.RowsPerSec, 1e-9, "rows over the 2 s since the take")

	s.publishLoad(context.Background(), reg, time.Now())
	require.Len(t, info().Ranges, 1, "measured once: reported from then on")
}
