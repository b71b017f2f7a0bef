package sorterbench

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/procstat"
	"github.com/tistream/tistream/libs/workpool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// floorRange is one range's rows, held once: the row headers in a slice
// and their bytes in one buffer, two of each (the round being fed, the
// round being published), reused once the round that staged them is
// published.
type floorRange struct {
	w     *pool.RangeWriter
	rows  [2][]pool.Row
	bytes [2][]byte
}

// RunFloor measures what the committed data pool alone costs, a floor
// under any sorter that publishes this workload in this format: the same
// rows are copied once into memory each range reuses, in arrival order
// (this workload feeds every range in commit order, so nothing is sorted
// but a transaction's rows by key), and staged, published every round and
// read back exactly as Run does — no matcher, no sort buffer, no
// watermark map, no arena, no write stall (a round waits for the one
// before it to be published, so at most two rounds are held). It is not a
// sorter: rows out of commit order would be published out of order. Its
// figures bound what a faster ordering core could reach on the same
// machine with the same pool path.
func RunFloor(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Mode: "floor", Procs: runtime.GOMAXPROCS(0), Workers: o.Workers, Rows: o.Rows / TxnRows * TxnRows}
	store, group, err := openPool(ctx, o.Dir)
	if err != nil {
		return res, err
	}
	defer group.Close()
	m, err := publishManifest(ctx, store)
	if err != nil {
		return res, err
	}
	ranges := make([]*floorRange, len(m.Ranges))
	for i, d := range m.Ranges {
		w, err := pool.CreateRange(ctx, group, pool.RangeSpec{Tenant: 1, RangeID: d.RangeId, Start: d.StartKey, End: d.EndKey, OpenedAt: 1}, 1)
		if err != nil {
			return res, err
		}
		ranges[i] = &floorRange{w: w}
	}
	workers, err := workpool.New(o.Workers, len(ranges)*2)
	if err != nil {
		return res, err
	}
	defer workers.Close()

	g := newGenerator(o.Seed)
	start := procstat.Begin()
	cur := 0
	var pubErr error
	var pubs sync.WaitGroup
	var last, asked uint64 // the last commit ts fed; the last round's watermark
	round := func() error {
		pubs.Wait() // the round before: its rows' memory is free again
		if pubErr != nil || last == asked {
			return pubErr
		}
		r, wm := cur, last
		asked = last
		cur ^= 1
		for _, fr := range ranges {
			fr.rows[cur], fr.bytes[cur] = fr.rows[cur][:0], fr.bytes[cur][:0]
		}
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			staged := make([]*pool.Staged, len(ranges))
			for i, fr := range ranges {
				if err := workers.Submit(uint64(i), func() error {
					rows := fr.rows[r]
					size := 0
					for j := range rows {
						size += len(rows[j].Key) + len(rows[j].Value)
					}
					st, err := fr.w.Stage(wm, func(yield func(*pool.Row) error) error {
						for j := range rows {
							if err := yield(&rows[j]); err != nil {
								return err
							}
						}
						return nil
					}, pool.FlushOptions{SizeHint: size, Rows: len(rows)})
					staged[i] = st
					return err
				}); err != nil {
					pubErr = err
					return
				}
			}
			if err := workers.Wait(); err != nil {
				pubErr = err
				return
			}
			if _, err := group.Publish(ctx, staged); err != nil {
				pubErr = err
				return
			}
			for _, st := range staged {
				if !st.Done() {
					pubErr = fmt.Errorf("floor: a staged flush was not published")
					return
				}
			}
		}()
		return nil
	}
	lastRound := time.Now()
	var fed int64
	for k := 0; k < o.Rows/TxnRows; k++ {
		g.txn(k)
		fr := ranges[g.table]
		n := len(fr.rows[cur])
		for j := 0; j < TxnRows; j++ {
			key, val := g.keys[j], g.vals[j]
			b := fr.bytes[cur]
			if cap(b)-len(b) < len(key)+len(val) {
				// A larger buffer for the rest of the round; the rows
				// already held keep the old one alive until it ends.
				b = make([]byte, 0, max(2*cap(b), int(o.FlushBytes)/Tables*2, 64<<10))
			}
			kn := len(b)
			b = append(b, key...)
			key = b[kn:len(b):len(b)]
			b = append(b, val...)
			val = b[kn+len(key) : len(b) : len(b)]
			fr.bytes[cur] = b
			fr.rows[cur] = append(fr.rows[cur], pool.Row{CommitTs: g.commit, StartTs: g.commit - 5, Op: formatv1.Op_OP_PUT, Key: key, Value: val})
		}
		// One transaction's rows share commit and start ts: key order is
		// the pool's order.
		slices.SortFunc(fr.rows[cur][n:], func(a, b pool.Row) int { return bytes.Compare(a.Key, b.Key) })
		last = g.commit
		fed += int64(TxnRows * RowBytes)
		if (k+1)*TxnRows%o.BatchRows == 0 && (time.Since(lastRound) >= o.FlushEvery || (o.FlushBytes > 0 && fed >= o.FlushBytes)) {
			if err := round(); err != nil {
				return res, err
			}
			lastRound, fed = time.Now(), 0
		}
	}
	if err := round(); err != nil {
		return res, err
	}
	pubs.Wait()
	if pubErr != nil {
		return res, pubErr
	}
	ingested := start.End()
	if o.AfterIngest != nil {
		o.AfterIngest()
	}
	for _, fr := range ranges {
		fr.rows, fr.bytes = [2][]pool.Row{}, [2][]byte{} // garbage for the output's allocations, as Run's are
	}
	if err := readBack(ctx, o, &res, ingested, workers, store); err != nil {
		return res, err
	}
	return res, nil
}
