package dispatcher

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The replay caches of a dispatcher's streams share one byte budget: a file
// that does not fit is not kept (the next run reads it from the buffer),
// trimming to the checkpoint and clearing give the bytes back, and the
// gauge follows what is kept.
func TestReplayCacheBudget(t *testing.T) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	b := newReplayBudget(10, gauge)
	a, c := newReplayCache(b), newReplayCache(b)
	a.put(1, "k1", make([]byte, 4))
	a.put(2, "k2", make([]byte, 4))
	c.put(7, "k7", make([]byte, 4)) // 12 > 10: not kept
	c.put(8, "k8", make([]byte, 2))
	a.put(2, "k2", make([]byte, 4)) // already kept: counted once
	require.Equal(t, int64(10), b.used.Load())
	require.Equal(t, 10.0, gaugeValue(t, gauge))
	f, ok := a.get(2)
	require.True(t, ok)
	require.Equal(t, "k2", f.key)
	_, ok = c.get(7)
	require.False(t, ok)

	a.trim(1) // the checkpoint passed file 1
	_, ok = a.get(1)
	require.False(t, ok)
	_, ok = a.get(2)
	require.True(t, ok)
	require.Equal(t, int64(6), b.used.Load())
	c.put(7, "k7", make([]byte, 4)) // fits now
	_, ok = c.get(7)
	require.True(t, ok)

	a.clear()
	c.clear()
	require.Zero(t, b.used.Load())
	require.Zero(t, gaugeValue(t, gauge))

	off := newReplayCache(newReplayBudget(0, gauge)) // --replay-cache-bytes=0
	off.put(1, "k1", make([]byte, 1))
	_, ok = off.get(1)
	require.False(t, ok)
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(g))
	fams, err := reg.Gather()
	require.NoError(t, err)
	return fams[0].Metric[0].GetGauge().GetValue()
}
