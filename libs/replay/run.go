package replay

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sorter"
)

// run delivers every store's files to the tenant's ranges, flushing as it
// goes and injecting snapshot-and-restore crashes when asked.
func (tr *tenantRun) run(ctx context.Context, cfg Config, deps sorter.Deps, rng *rand.Rand, sum *Summary) error {
	flushEvery := cfg.FlushEvery
	if flushEvery <= 0 {
		flushEvery = max(1, len(tr.stores))
	}
	next := 0 // round-robin position
	delivered := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var open []uint64
		for _, s := range tr.stores {
			if tr.cursor[s] < len(tr.files[s]) {
				open = append(open, s)
			}
		}
		if len(open) == 0 {
			break
		}
		var store uint64
		burst := 1
		if cfg.Random {
			store = open[rng.IntN(len(open))]
			burst = 1 + rng.IntN(8)
		} else {
			store = open[next%len(open)]
			next++
		}
		for ; burst > 0 && tr.cursor[store] < len(tr.files[store]); burst-- {
			key := tr.files[store][tr.cursor[store]]
			rt := tr.routers[store]
			if rt == nil {
				rt = tr.router(ctx, cfg, store)
				tr.routers[store] = rt
			}
			if err := tr.deliver(ctx, cfg, rt, key, 0, sum); err != nil {
				return err
			}
			tr.cursor[store]++
			delivered++
			if delivered%flushEvery == 0 {
				if err := tr.flushAll(ctx); err != nil {
					return err
				}
			}
			if err := tr.chaos(ctx, cfg, deps, rng, sum); err != nil {
				return err
			}
		}
		if cfg.Progress != nil && delivered%100 == 0 {
			cfg.Progress(*sum)
		}
	}
	for len(tr.pending) > 0 { // crashes still waiting for more files
		tr.pending[0].after = 0
		if err := tr.chaos(ctx, cfg, deps, rng, sum); err != nil {
			return err
		}
	}
	return tr.flushAll(ctx)
}

// router routes one store's files, reading the base header of a delta
// header it starts at from the buffer.
func (tr *tenantRun) router(ctx context.Context, cfg Config, store uint64) *route.Router {
	return route.NewRouter(tr.table).WithBase(storefile.BaseFromStore(ctx, cfg.Buffer, cfg.Cluster, tr.id, store))
}

// deliver routes one file with rt (the store's files in order) and applies
// its batches; only is a range id to deliver to (redelivery after a
// restore), 0 for all.
func (tr *tenantRun) deliver(ctx context.Context, cfg Config, rt *route.Router, key string, only uint64, sum *Summary) error {
	data, err := cfg.Buffer.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("replay: read %s: %w", key, err)
	}
	batches, _, err := rt.Route(key, data)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if only == 0 {
		sum.Files++
		sum.Bytes += int64(len(data))
	}
	for _, id := range slices.Sorted(maps.Keys(batches)) {
		if only != 0 && id != only {
			continue
		}
		if err := tr.ranges[id].Apply(batches[id]); err != nil {
			return err
		}
	}
	return nil
}

// flushAll publishes what every range of the tenant can in one
// publication of its group: each range stages its flush, the group
// publishes them together, each range commits its own.
func (tr *tenantRun) flushAll(ctx context.Context) error {
	var staged []*pool.Staged
	var ranges []*sorter.Range
	for _, id := range slices.Sorted(maps.Keys(tr.ranges)) {
		st, err := tr.ranges[id].Prepare(^uint64(0))
		if err != nil {
			return err
		}
		if st != nil {
			staged, ranges = append(staged, st), append(ranges, tr.ranges[id])
		}
	}
	if _, err := tr.group.Publish(ctx, staged); err != nil {
		return fmt.Errorf("replay: publish tenant %d: %w", tr.id, err)
	}
	for i, r := range ranges {
		if err := r.Commit(staged[i]); err != nil {
			return err
		}
	}
	return nil
}

// chaos snapshots a random range now and then, and crashes ranges whose
// snapshot has gone stale by a few files: the range is dropped, restored by
// a new owner epoch from that snapshot, and fed again from its positions.
func (tr *tenantRun) chaos(ctx context.Context, cfg Config, deps sorter.Deps, rng *rand.Rand, sum *Summary) error {
	if cfg.RestoreChance > 0 && rng.Float64() < cfg.RestoreChance {
		id := slices.Sorted(maps.Keys(tr.ranges))[rng.IntN(len(tr.ranges))]
		if !slices.ContainsFunc(tr.pending, func(p pendingRestore) bool { return p.rangeID == id }) {
			if _, err := tr.ranges[id].Snapshot(ctx); err != nil {
				return err
			}
			tr.pending = append(tr.pending, pendingRestore{rangeID: id, after: rng.IntN(6)})
		}
	}
	var keep []pendingRestore
	for _, p := range tr.pending {
		if p.after > 0 {
			p.after--
			keep = append(keep, p)
			continue
		}
		if err := tr.restore(ctx, cfg, deps, p.rangeID, sum); err != nil {
			return err
		}
	}
	tr.pending = keep
	return nil
}

func (tr *tenantRun) restore(ctx context.Context, cfg Config, deps sorter.Deps, id uint64, sum *Summary) error {
	old := tr.ranges[id]
	st := old.Stats()
	sum.Rows += st.Rows
	sum.RowsFlushed += st.RowsFlushed
	sum.Flushes += st.Flushes
	sum.LateCommits += st.LateCommits
	if err := old.Drop(); err != nil {
		return err
	}
	tr.epochs[id]++
	r, err := sorter.Restore(ctx, deps, tr.id, id, tr.epochs[id])
	if err != nil {
		return fmt.Errorf("replay: restore range %d: %w", id, err)
	}
	tr.ranges[id] = r
	sum.Restores++
	// Feed it what the snapshot does not include, up to where the others are.
	for _, s := range tr.stores {
		from := int(r.Applied()[s])
		rt := tr.router(ctx, cfg, s) // starts at file from+1, not the store's first
		for i := from; i < tr.cursor[s]; i++ {
			if err := tr.deliver(ctx, cfg, rt, tr.files[s][i], id, sum); err != nil {
				return err
			}
			sum.Redelivered++
		}
	}
	return nil
}
