package schema

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// tablesByWalk and idsSinceByWalk are Tables and TableIDsSince as they were
// before the index, each table's own test the same: a walk of every table,
// the reference for which tables the index leads them to.
func tablesByWalk(h *History, dbID int64, ts uint64) []Table {
	var out []Table
	for _, id := range slices.Sorted(maps.Keys(h.tables)) {
		if t, ok := h.Table(id, ts); ok && t.DBID == dbID {
			out = append(out, t)
		}
	}
	return out
}

func idsSinceByWalk(h *History, dbID int64, ts uint64) []int64 {
	var out []int64
	for _, id := range slices.Sorted(maps.Keys(h.tables)) {
		if inDBSince(h.tables[id], dbID, ts) {
			out = append(out, id)
		}
	}
	return out
}

// Random creates, moves between databases, drops, same-ts rewrites and
// truncations, with the listings asked between them (so a stale index would
// answer) and after a round trip through Encode/Decode: the index answers
// what a walk of every table does.
func TestTableIndexAgreesWithAWalk(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := New(1)
		ts := uint64(100)
		check := func(h *History, what string) {
			t.Helper()
			for db := int64(0); db <= 4; db++ {
				for _, at := range []uint64{0, 100, ts / 2, ts - 1, ts, ts + 1} {
					require.Equal(t, tablesByWalk(h, db, at), h.Tables(db, at), "seed %d, %s: db %d at %d", seed, what, db, at)
					require.Equal(t, idsSinceByWalk(h, db, at), h.TableIDsSince(db, at), "seed %d, %s: since, db %d at %d", seed, what, db, at)
				}
			}
		}
		for step := 0; step < 300; step++ {
			if rng.IntN(4) > 0 {
				ts += uint64(rng.IntN(3)) // 0: a rewrite at the same ts
			}
			id := int64(1 + rng.IntN(40))
			db := int64(1 + rng.IntN(3))
			switch op := rng.IntN(10); {
			case op < 6: // create, or move to db
				h.putTable(ts, db, &TableHead{ID: id}, fmt.Appendf(nil, `{"id":%d}`, id))
			case op < 9:
				if vs := h.tables[id]; len(vs) > 0 {
					h.dropTable(ts, vs[len(vs)-1].DBID, id)
				}
			default:
				h.SetResolved(ts)
				h.Truncate(ts - uint64(rng.IntN(20)))
			}
			h.last = ts // as ApplyMeta keeps it (Encode checks it)
			if step%7 == 0 {
				check(h, "applied")
			}
		}
		check(h, "end")
		h.SetResolved(ts)
		b, err := h.Encode()
		require.NoError(t, err)
		got, err := Decode("h", b)
		require.NoError(t, err)
		check(got, "decoded")
		got, err = Decode("h", b)
		require.NoError(t, err)
		got.IndexTables() // built before the first listing, as the registry does
		check(got, "decoded and indexed")
	}
}

// Readers sharing a History (the registry's, under its read lock) may
// build the index at once (go test -race).
func TestTableIndexConcurrentReaders(t *testing.T) {
	h := New(1)
	for id := int64(1); id <= 999; id++ {
		h.putTable(100, 1+id%3, &TableHead{ID: id}, []byte(`{}`))
	}
	got := make([]int, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = len(h.Tables(int64(1+i%3), 100))
		}()
	}
	wg.Wait()
	require.Equal(t, []int{333, 333, 333, 333, 333, 333, 333, 333}, got)
}

// A small database's listing in a tenant of many tables, each after a
// CREATE TABLE elsewhere (a sorter's PullDB while DDL goes on): the index
// follows the new table instead of being rebuilt from every table.
//
//	go test -run XXX -bench TableListAfterCreate ./libs/schema/
func BenchmarkTableListAfterCreate(b *testing.B) {
	const big = 200_000
	h := New(1)
	for id := int64(1); id <= big; id++ {
		h.putTable(100, 1, &TableHead{ID: id}, []byte(`{}`))
	}
	for id := int64(big + 1); id <= big+10; id++ {
		h.putTable(100, 2, &TableHead{ID: id}, []byte(`{}`))
	}
	require.Len(b, h.Tables(2, 100), 10)
	id := int64(big + 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id++
		h.putTable(100, 1, &TableHead{ID: id}, []byte(`{}`))
		if len(h.Tables(2, 100)) != 10 {
			b.Fatal("db 2 lists other tables")
		}
	}
}
