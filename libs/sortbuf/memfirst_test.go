package sortbuf_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func TestNewMemoryFirstRejects(t *testing.T) {
	_, err := sortbuf.NewMemoryFirst(nil, 1<<20)
	require.Error(t, err, "no disk store")
	_, err = sortbuf.NewMemoryFirst(sortbuf.NewMemory(), -1)
	require.Error(t, err, "negative budget")
}

// model is an independent record of what one range must hold: a plain map
// of rows by identity and the floor.
type model struct {
	rows  map[string]sortbuf.Row
	floor uint64
}

func newModel() *model { return &model{rows: map[string]sortbuf.Row{}} }

func ident(commitTs, startTs uint64, key []byte) string {
	return fmt.Sprintf("%020d/%020d/%x", commitTs, startTs, key)
}

func (m *model) add(r sortbuf.Row) {
	if r.CommitTs > m.floor {
		m.rows[ident(r.CommitTs, r.StartTs, r.Key)] = r.Clone()
	}
}

func (m *model) deleteUpTo(ts uint64) {
	m.floor = max(m.floor, ts)
	for k, r := range m.rows {
		if r.CommitTs <= m.floor {
			delete(m.rows, k)
		}
	}
}

// want is the model's rows up to upTo in buffer order, rendered with their
// values.
func (m *model) want(upTo uint64) []string {
	var out []string
	for k, r := range m.rows {
		if r.CommitTs <= upTo {
			out = append(out, k+"="+string(r.Value)+"/"+string(r.OldValue)+"/"+r.Op.String())
		}
	}
	sort.Strings(out) // identities are fixed width: string order is buffer order
	return out
}

func render(t *testing.T, b sortbuf.Buffer, upTo uint64) []string {
	t.Helper()
	var out []string
	require.NoError(t, b.Scan(upTo, func(r sortbuf.Row) error {
		out = append(out, ident(r.CommitTs, r.StartTs, r.Key)+"="+string(r.Value)+"/"+string(r.OldValue)+"/"+r.Op.String())
		return nil
	}))
	return out
}

// playRandom runs random adds (new rows, re-adds of buffered rows with new
// values, rows below the floor), scans, Has lookups and deletes on a few
// ranges of s, checking every scan and lookup against the model; it returns
// how many scans found rows of a range both in memory and on disk.
func playRandom(t *testing.T, s sortbuf.Store, uids []uint64, steps int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	models := map[uint64]*model{}
	for _, u := range uids {
		models[u] = newModel()
	}
	ts := uint64(1000)
	for step := 0; step < steps; step++ {
		u := uids[rng.IntN(len(uids))]
		m, b := models[u], s.Buffer(u)
		switch op := rng.IntN(20); {
		case op < 10: // a transaction, commit ts near the front, some rows late
			ts += uint64(rng.IntN(4))
			commit := ts - uint64(rng.IntN(40))
			start := commit - 1 - uint64(rng.IntN(5))
			batch := b.NewBatch()
			for i := 0; i < 1+rng.IntN(6); i++ {
				r := sortbuf.Row{CommitTs: commit, StartTs: start, Op: sortbuf.Op(1 + rng.IntN(2)),
					Key:      []byte(fmt.Sprintf("k%02d", rng.IntN(30))),
					Value:    []byte(fmt.Sprintf("v%d-%s", step, string(make([]byte, rng.IntN(200))))),
					OldValue: []byte(fmt.Sprintf("o%d", rng.IntN(3)))[:rng.IntN(3)]}
				require.NoError(t, batch.Add(r))
				m.add(r)
			}
			require.NoError(t, batch.Commit())
			batch.Close()
		case op < 12: // re-add a buffered row with a new value: it replaces the old one
			for _, r := range m.rows {
				r.Value = []byte(fmt.Sprintf("again%d", step))
				require.NoError(t, b.Add(r))
				m.add(r)
				break
			}
		case op < 15:
			upTo := ts - uint64(rng.IntN(50))
			if rng.IntN(4) == 0 {
				upTo = math.MaxUint64
			}
			require.Equal(t, m.want(upTo), render(t, b, upTo), "range %d step %d", u, step)
		case op < 17:
			commit := ts - uint64(rng.IntN(60))
			key := []byte(fmt.Sprintf("k%02d", rng.IntN(30)))
			for start := commit - 6; start < commit; start++ {
				_, want := m.rows[ident(commit, start, key)]
				got, err := b.Has(commit, start, key)
				require.NoError(t, err)
				require.Equal(t, want, got, "Has(%d, %d, %s) step %d", commit, start, key, step)
			}
		case op < 19:
			upTo := ts - uint64(rng.IntN(60))
			require.NoError(t, b.DeleteUpTo(upTo))
			m.deleteUpTo(upTo)
			require.Equal(t, m.floor, b.Floor())
		default:
			// An abandoned batch leaves nothing behind.
			batch := b.NewBatch()
			require.NoError(t, batch.Add(sortbuf.Row{CommitTs: ts + 1000, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("abandoned")}))
			batch.Close()
		}
	}
	for _, u := range uids {
		m, b := models[u], s.Buffer(u)
		require.Equal(t, m.want(math.MaxUint64), render(t, b, math.MaxUint64), "range %d at the end", u)
		require.NoError(t, b.DeleteUpTo(math.MaxUint64))
		require.Empty(t, render(t, b, math.MaxUint64))
	}
}

// TestMemoryFirstSpillAgainstModel plays random operations through budgets
// from none to ample; with a tiny budget ranges move to Pebble and back all
// the time, and every scan and lookup must still match the model: each row
// exactly once, in order, the last added of an identity winning, floors
// and Has the same on both sides of the boundary.
func TestMemoryFirstSpillAgainstModel(t *testing.T) {
	for _, budget := range []int64{0, 2 << 10, 16 << 10, 1 << 30} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			cfg := smallConfig()
			cfg.GCInterval = 0 // tombstones written at once: both GC paths run
			s := memoryFirst(t, cfg, budget)
			playRandom(t, s, []uint64{1, 2, 3, 4, 5}, 4000, uint64(budget)+1)
			m := s.Metrics()
			if budget <= 16<<10 {
				require.Positive(t, m.Spills, "the spill path ran")
			} else {
				require.Zero(t, m.Spills)
			}
			require.Zero(t, m.OnDisk, "every range emptied")
			require.Zero(t, m.Used, "every row deleted: no memory left charged")
		})
	}
}

// TestMemoryFirstConcurrentRanges runs ranges on their own goroutines over
// a tiny budget, so that one range's commit spills the others while they
// scan, delete and add (run it with -race).
func TestMemoryFirstConcurrentRanges(t *testing.T) {
	s := memoryFirst(t, smallConfig(), 8<<10)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			playRandom(t, s, []uint64{uint64(10 + g)}, 1500, uint64(g))
		}()
	}
	wg.Wait()
	require.Positive(t, s.Metrics().Spills)
	require.Zero(t, s.Metrics().Used)
}

// A row on disk and the same identity added again in memory: the one added
// last wins, in scans, after another spill, and for Has.
func TestMemoryFirstReplaceAcrossBoundary(t *testing.T) {
	s := memoryFirst(t, smallConfig(), 0) // every commit spills
	b := s.Buffer(1)
	row := func(v string) sortbuf.Row {
		return sortbuf.Row{CommitTs: 10, StartTs: 5, Op: sortbuf.OpPut, Key: []byte("k"), Value: []byte(v)}
	}
	require.NoError(t, b.Add(row("first"), sortbuf.Row{CommitTs: 20, StartTs: 5, Op: sortbuf.OpPut, Key: []byte("z")}))
	require.Equal(t, 1, s.Metrics().OnDisk)

	// Added while a scan holds the range: it stays in memory, next to the
	// disk copy.
	var seen []string
	require.NoError(t, b.Scan(math.MaxUint64, func(r sortbuf.Row) error {
		if len(seen) == 0 {
			require.NoError(t, b.Add(row("second")))
		}
		seen = append(seen, string(r.Key)+"="+string(r.Value))
		return nil
	}))
	require.Equal(t, []string{"k=first", "z="}, seen, "the scan's view")
	got := scanRows(t, b)
	require.Equal(t, []string{"k=second", "z="}, got, "memory replaces disk")

	require.NoError(t, b.Add(sortbuf.Row{CommitTs: 30, StartTs: 5, Op: sortbuf.OpPut, Key: []byte("y")})) // spills again
	require.Equal(t, []string{"k=second", "z=", "y="}, scanRows(t, b))
	ok, err := b.Has(10, 5, []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.DeleteUpTo(10))
	ok, err = b.Has(10, 5, []byte("k"))
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, []string{"z=", "y="}, scanRows(t, b))
	require.NoError(t, b.DeleteUpTo(30))
	require.Zero(t, s.Metrics().OnDisk, "the floor passed every row on disk")
	require.Empty(t, scanRows(t, b))
}

func scanRows(t *testing.T, b sortbuf.Buffer) []string {
	t.Helper()
	var out []string
	require.NoError(t, b.Scan(math.MaxUint64, func(r sortbuf.Row) error {
		out = append(out, string(r.Key)+"="+string(r.Value))
		return nil
	}))
	return out
}

// The largest ranges go first, and only as many as needed.
func TestMemoryFirstSpillsLargestFirst(t *testing.T) {
	const budget = 4 << 20
	s := memoryFirst(t, smallConfig(), budget)
	value := make([]byte, 1000)
	fill := func(uid uint64, n int) {
		batch := s.Buffer(uid).NewBatch()
		defer batch.Close()
		for i := 0; i < n; i++ {
			require.NoError(t, batch.Add(sortbuf.Row{CommitTs: uint64(100 + i), StartTs: 1, Op: sortbuf.OpPut,
				Key: []byte(fmt.Sprint(i)), Value: value}))
		}
		require.NoError(t, batch.Commit())
	}
	fill(1, 200)  // ~200 KB (arena chunks: up to twice that while they grow)
	fill(2, 2000) // ~2 MB: the largest
	fill(3, 500)
	require.Zero(t, s.Metrics().Spills)
	fill(4, 1500) // over budget: range 2 alone brings it back under
	m := s.Metrics()
	require.Equal(t, int64(1), m.Spills)
	require.Equal(t, int64(2000), m.SpilledRows)
	require.Equal(t, 1, m.OnDisk)
	require.LessOrEqual(t, m.Used, int64(budget-budget/8))
	require.Len(t, scanRows(t, s.Buffer(2)), 2000, "its rows are all still there")
}

// Memory is given back: after Drop, after abandoned batches, after every
// row was deleted.
func TestMemoryFirstAccounting(t *testing.T) {
	s := memoryFirst(t, smallConfig(), 1<<30)
	for u := uint64(1); u <= 3; u++ {
		b := s.Buffer(u)
		for i := 0; i < 2000; i++ {
			require.NoError(t, b.Add(sortbuf.Row{CommitTs: uint64(10 + i), StartTs: 1, Op: sortbuf.OpPut,
				Key: []byte(fmt.Sprint(i)), Value: make([]byte, 100+i%300)}))
		}
	}
	big := make([]byte, 300<<10) // a row with a chunk of its own
	require.NoError(t, s.Buffer(1).Add(sortbuf.Row{CommitTs: 5000, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("big"), Value: big}))
	require.Greater(t, s.Metrics().Used, int64(3*2000*100))
	open := s.Buffer(2).NewBatch()
	require.NoError(t, open.Add(sortbuf.Row{CommitTs: 9000, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("x")}))
	require.NoError(t, s.Buffer(1).DeleteUpTo(math.MaxUint64))
	require.NoError(t, s.Buffer(2).Drop())
	open.Close()
	require.NoError(t, s.Buffer(3).DeleteUpTo(1000))
	require.Positive(t, s.Metrics().Used)
	require.NoError(t, s.Buffer(3).DeleteUpTo(math.MaxUint64))
	require.Zero(t, s.Metrics().Used)
}
