package main

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore/metered"
)

// checkLagRequests checks a lag run's request counts against what the
// simulator itself counted, and that every service's requests were
// gathered.
func checkLagRequests(t *testing.T, r *lagResult) {
	t.Helper()
	q := r.Requests
	require.NotNil(t, q)
	count := func(keep func(metered.Sample) bool) float64 { return sum(q.Requests, keep) }
	require.Equal(t, float64(r.Sim.Files), count(func(s metered.Sample) bool {
		return s.Service == upstreamService && s.Purpose == string(layout.PurposeStoreFile) &&
			s.Kind == metered.KindPutIfAbsent && s.Outcome == metered.OutcomeOK
	}), "the simulator's store files, counted by the wrapper")
	upBytes := sum(q.Bytes, func(s metered.Sample) bool {
		return s.Service == upstreamService && s.Direction == metered.DirectionIn
	})
	require.Equal(t, float64(r.Sim.Bytes), upBytes, "the simulator's bytes (store files and schema snapshot)")
	for _, service := range []string{"dispatcher", "sorter", "api-server", "meta-server"} {
		require.Positive(t, count(func(s metered.Sample) bool { return s.Service == service }), service)
	}
	require.Positive(t, count(func(s metered.Sample) bool {
		return s.Service == "sorter" && purposeIs(s, layout.Purpose.IsPool) && isWrite(s.Kind)
	}), "pool writes")
	require.Positive(t, count(func(s metered.Sample) bool {
		return s.Service == "dispatcher" && s.Purpose == string(layout.PurposeStoreFile) && s.Kind == metered.KindGet
	}), "store-file reads")
	var out bytes.Buffer
	printRequests(&out, q)
	require.Contains(t, out.String(), "| pool requests | PUT | GET | LIST | DELETE |")
	require.Contains(t, out.String(), "| store-file reads (GET) |")
}

func TestFitModel(t *testing.T) {
	near := func(want, got float64) { require.InDelta(t, want, got, 1e-9) }
	// Two runs, exactly y = 2*d + 0.01*rho.
	m := fitModel([]point{{64, 100, 2*64 + 1}, {4, 10000, 2*4 + 100}})
	require.Equal(t, "two terms", m.How)
	near(2, m.PerDriver)
	near(0.01, m.PerRow)
	// One run cannot separate them: the driver alone.
	m = fitModel([]point{{64, 100, 128}})
	require.Equal(t, "driver only", m.How)
	near(2, m.PerDriver)
	near(0, m.PerRow)
	// Runs with the same rows per driver: the driver alone.
	m = fitModel([]point{{10, 100, 20}, {20, 200, 40}})
	require.Equal(t, "driver only", m.How)
	near(2, m.PerDriver)
	// Requests falling as rows grow would need a negative term: the better
	// of the one-term fits.
	m = fitModel([]point{{64, 100, 100}, {4, 10000, 1}})
	require.GreaterOrEqual(t, m.PerDriver, 0.0)
	require.GreaterOrEqual(t, m.PerRow, 0.0)
	require.NotEqual(t, "two terms", m.How)
	// Nothing measured.
	m = fitModel([]point{{3, 100, 0}, {3, 10000, 0}})
	near(0, m.PerDriver)
	near(0, m.PerRow)
}

func TestMonthlyCost(t *testing.T) {
	// The figures: ~115 PUT/s is ~$1,500 a month; one PUT per
	// second for three stores ~$39.
	require.InDelta(t, 1490.4, monthly(map[string]float64{classWrite: 115}), 0.01)
	require.InDelta(t, 38.88, monthly(map[string]float64{classWrite: 3}), 0.001)
	require.InDelta(t, 1.0368, monthly(map[string]float64{classRead: 1}), 1e-9)
	require.Zero(t, monthly(map[string]float64{classFree: 1000}))
	require.Equal(t, classWrite, priceClass(metered.KindList))
	require.Equal(t, classRead, priceClass(metered.KindGetRange))
	require.Equal(t, classFree, priceClass(metered.KindDelete))
}

// Every request series falls in exactly one cost line, and the lines
// drive the projection.
func TestCostReport(t *testing.T) {
	mk := func(service, purpose, kind string, v float64) metered.Sample {
		return metered.Sample{Service: service, Purpose: purpose, Kind: kind, Outcome: metered.OutcomeOK, Value: v}
	}
	run := &requestRun{Label: "r", Stores: 3, Ranges: 64, Seconds: 10, Rows: 1000, Requests: []metered.Sample{
		mk(upstreamService, "store_file", metered.KindPutIfAbsent, 30),
		mk("dispatcher", "store_file", metered.KindGet, 30),
		mk("dispatcher", "store_file", metered.KindList, 80),
		mk("dispatcher", "store_file", metered.KindDelete, 25),
		mk("sorter", "pool_log", metered.KindPutIfAbsent, 640),
		mk("sorter", "pool_segment", metered.KindPut, 10),
		mk("api-server", "pool_log", metered.KindGet, 6400),
		mk("meta-server", "pool_floor", metered.KindDelete, 5),
		mk("sorter", "sorter_snapshot", metered.KindPut, 128),
		mk("schema-registry", "schema_registry", metered.KindList, 2),
	}}
	for _, s := range run.Requests {
		l := lineOf(s)
		require.True(t, l >= 0 && l < len(costLines), "%+v", s)
	}
	require.Equal(t, 0, lineOf(run.Requests[0]))
	require.Equal(t, 1, lineOf(run.Requests[2]))
	require.Equal(t, 2, lineOf(run.Requests[3]))
	require.Equal(t, 3, lineOf(run.Requests[5]))
	require.Equal(t, 4, lineOf(run.Requests[6]))
	require.Equal(t, 5, lineOf(run.Requests[7]))
	require.Equal(t, 6, lineOf(run.Requests[8]))
	require.Equal(t, 7, lineOf(run.Requests[9]))
	var out bytes.Buffer
	// The fleet is the run itself: the projection is the run's own cost.
	printCost(&out, []*requestRun{run}, run.shape())
	perSec := map[string]float64{classWrite: (30 + 80 + 640 + 10 + 128 + 2) / 10.0, classRead: (30 + 6400) / 10.0}
	require.Contains(t, out.String(), "| r | 3 | 64 | 100 |")
	require.Contains(t, out.String(), "| total | | | | | | | "+dollars(monthly(perSec))+" |")
	require.False(t, math.IsNaN(monthly(perSec)))

	// Written and read back.
	path := filepath.Join(t.TempDir(), "run.json")
	require.NoError(t, writeRequestRun(path, run))
	back, err := readRequestRun(path)
	require.NoError(t, err)
	require.Equal(t, run, back)
	require.NoError(t, writeRequestRun(path, &requestRun{}))
	_, err = readRequestRun(path)
	require.ErrorContains(t, err, "not a request run")
}
