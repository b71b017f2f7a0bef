package txnmatch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// txnRows, as a slice and past fewRows as a map, against a plain map:
// keys sharing their tails, random sets, replacements, removals and resets, with every read checked
// after each step.
func TestTxnRowsAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var r txnRows
	want := map[string]prewrite{}
	check := func(step int) {
		t.Helper()
		require.Equal(t, len(want), r.len(), "step %d", step)
		if len(want) > fewRows {
			require.True(t, r.big, "step %d: more than fewRows rows are in the map", step)
		}
		for k, p := range want {
			got, ok := r.get([]byte(k))
			require.True(t, ok, "step %d: %q", step, k)
			require.Equal(t, p.value(), got.value(), "step %d: %q", step, k)
		}
		_, ok := r.get([]byte("absent"))
		require.False(t, ok)
		keys := []string{}
		for _, p := range r.sorted() {
			keys = append(keys, string(p.key()))
		}
		wantKeys := make([]string, 0, len(want))
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		slices.Sort(wantKeys)
		require.Equal(t, wantKeys, keys, "step %d", step)
	}
	for step := range 5000 {
		// Few distinct keys in some phases (the slice), many in others.
		space := 12
		if step/500%2 == 1 {
			space = 80
		}
		// Keys of one tail (the last four bytes) with other prefixes and
		// lengths, and short keys.
		k := [...]string{"", "a", "b", "bb"}[rng.IntN(4)] + fmt.Sprintf("-k%02d", rng.IntN(space/3))
		if rng.IntN(8) == 0 {
			k = k[len(k)-2:]
		}
		switch op := rng.IntN(10); {
		case op < 5:
			p := newPrewrite([]byte(k), sortbuf.OpPut, 0, []byte(fmt.Sprint(step)), nil)
			_, held := r.get([]byte(k))
			r.set(p, held)
			want[k] = p
		case op < 9:
			r.remove([]byte(k))
			delete(want, k)
		default:
			if rng.IntN(20) == 0 {
				r.reset()
				clear(want)
			}
		}
		check(step)
	}
}

// each visits every row once, and the function may remove the row it is
// given; stopping early leaves the rest.
func TestTxnRowsEachRemoving(t *testing.T) {
	for _, n := range []int{0, 1, 5, fewRows, fewRows + 1, 100} {
		var r txnRows
		for i := range n {
			r.set(newPrewrite(fmt.Appendf(nil, "k%03d", i), sortbuf.OpPut, 0, nil, nil), false)
		}
		seen := map[string]bool{}
		r.each(func(p prewrite) bool {
			require.False(t, seen[string(p.key())], "n %d: %q twice", n, p.key())
			seen[string(p.key())] = true
			if len(seen)%2 == 0 {
				r.remove(p.key())
			}
			return true
		})
		require.Len(t, seen, n)
		require.Equal(t, n-n/2, r.len(), "n %d: every second row removed", n)

		visited := 0
		r.each(func(p prewrite) bool {
			visited++
			r.remove(p.key())
			return visited < 2
		})
		require.Equal(t, max(0, n-n/2-min(2, n-n/2)), r.len(), "n %d: stopped after two", n)
	}
}

// txnTable, as a slice, past fewTxns as a map and back, against a plain
// map: random adds and removals with every read checked after each step.
func TestTxnTableAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var tt txnTable
	want := map[uint64]*txn{}
	for step := range 20000 {
		space := uint64(6)
		if step/1000%2 == 1 {
			space = 40
		}
		ts := 1 + rng.Uint64N(space)
		if rng.IntN(2) == 0 {
			if want[ts] == nil {
				x := &txn{bytes: int64(step)}
				tt.add(ts, x)
				want[ts] = x
			}
		} else {
			tt.remove(ts)
			delete(want, ts)
		}
		require.Equal(t, len(want), tt.len(), "step %d", step)
		if len(want) > fewTxns {
			require.True(t, tt.big, "step %d: more than fewTxns transactions are in the map", step)
		}
		if len(want) <= fewTxns/4 {
			require.False(t, tt.big, "step %d: a few left go back to the slice", step)
		}
		for ts, x := range want {
			require.Same(t, x, tt.get(ts), "step %d: %d", step, ts)
		}
		require.Nil(t, tt.get(1<<40), "a start_ts never added")
		seen := map[uint64]bool{}
		tt.each(func(ts uint64, x *txn) bool {
			require.False(t, seen[ts])
			seen[ts] = true
			require.Same(t, want[ts], x)
			return true
		})
		require.Len(t, seen, len(want))
		starts := tt.sortedStarts()
		require.True(t, slices.IsSorted(starts))
		require.Len(t, starts, len(want))
	}
}
