package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// The drain (backlog) mode of `tistream lag --backlog-rows N`: measures the
// throughput of the dispatcher(s) and sorter(s) at saturation, which the
// real-time mode cannot (its in-process simulator saturates first).
//
//  1. Start the fleet; the tenant is not registered, so nothing consumes.
//     Its store files are not notified either (the meta-server creates a
//     store's stream on its first notification).
//  2. Run the simulator as fast as it goes (not in real time) into the
//     fleet's buffer, with TSO physical times ending just before now.
//  3. Sample the idle fleet's CPU for a moment.
//  4. Register the tenant, notify each store's last file, and time until every range's published watermark
//     reaches the backlog's final resolved ts.
//  5. Optionally pull the tenant and count the rows against the simulator's.

// drainOptions are the drain mode's own settings.
type drainOptions struct {
	BacklogRows int64         // row changes to generate (sets the sim's duration at its rate)
	Idle        time.Duration // idle CPU sample between the backlog and the registration
	Timeout     time.Duration // how long the drain may take
	Pull        bool          // pull the tenant afterwards and count its rows
	CPUProfile  string        // write a CPU profile of the drain (registration to drained) here
	MemProfile  string        // write heap profiles at registration (MemProfile + ".start") and when drained here
	PullProfile string        // write a CPU profile of the pull after the drain here
}

// drainResult is what a drain run measured.
type drainResult struct {
	Sim     sim.Stats
	LogPath string

	Drain   time.Duration // registration to the last range watermark at the final resolved ts
	CPU     time.Duration // process CPU over the drain
	IdleCPU time.Duration // process CPU over the idle sample
	Idle    time.Duration // the idle sample's wall time

	Metrics map[string]float64   // workers' counters over the drain (after minus before)
	Objects map[string]*objCount // objects written by the services during the drain

	Pulled   bool
	RowsPull int64
	PullTime time.Duration
}

// lagTune applies the service knobs of the options to a fleet config.
func lagTune(o lagOptions) func(*fleetConfig) {
	return func(c *fleetConfig) {
		if o.SorterFlush > 0 {
			c.Sorter.FlushInterval = o.SorterFlush
		}
		if o.APIPoll > 0 {
			c.APIServer.PollInterval = o.APIPoll
		}
		if o.RegistryPoll > 0 {
			c.SchemaRegistry.PollInterval = o.RegistryPoll
		}
		if o.DispatcherPoll > 0 {
			c.Dispatcher.PollInterval = o.DispatcherPoll
		}
		if o.SorterSnapshot > 0 {
			c.Sorter.SnapshotInterval = o.SorterSnapshot
		}
		if o.DispatcherMaxInFlight > 0 {
			c.Dispatcher.MaxInFlight = o.DispatcherMaxInFlight
		}
	}
}

// backlogDuration is the simulated time that generates rows row changes at rps.
func backlogDuration(rows int64, rps int) time.Duration {
	d := time.Duration(rows) * time.Second / time.Duration(max(rps, 1))
	return max(d.Round(time.Millisecond), 100*time.Millisecond)
}

func drainBench(ctx context.Context, o lagOptions, d drainOptions, stderr io.Writer) (res *drainResult, err error) {
	res = &drainResult{Metrics: map[string]float64{}, Objects: map[string]*objCount{}}
	o.Sim.Realtime = false
	o.Sim.Tenants = 1
	o.Sim.Txns = 0
	o.Sim.Duration = backlogDuration(d.BacklogRows, o.Sim.RowsPerSec)
	// TSO physical times end (after the traffic and the longest lock hold)
	// a few seconds before now: nothing is older than the retentions.
	o.Sim.StartTime = time.Now().Add(-o.Sim.Duration - o.Sim.LongTxnHold - 10*time.Second)
	if err := o.Sim.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bf, err := startBenchFleet(ctx, o, "drain", stderr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := bf.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	f, rec := bf.fleet, bf.rec
	res.LogPath = bf.logPath

	// 1-2. The backlog, written straight to the store (not observed: the
	// recorder counts what the services write), no tenant registration, no
	// notifications.
	store, err := objstore.Open(ctx, f.storeURL)
	if err != nil {
		return nil, err
	}
	lastFile := map[uint64]*formatv1.StoreFileHeader{} // by store: what to notify after the registration
	s, err := sim.New(o.Sim, sim.Options{Store: store, OnFile: func(_ context.Context, _ string, h *formatv1.StoreFileHeader) error {
		if p := lastFile[h.StoreId]; p == nil || h.Seq > p.Seq {
			lastFile[h.StoreId] = h
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "drain: generating a backlog of %d row changes (%s simulated at %d rows/s)\n", d.BacklogRows, o.Sim.Duration, o.Sim.RowsPerSec)
	if res.Sim, err = s.Run(ctx); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	final := res.Sim.FinalResolvedTs
	fmt.Fprintf(stderr, "drain: backlog of %d committed rows, %d store files (%.1f MiB) in %.1f s; final resolved ts %d\n",
		res.Sim.RowsCommitted, res.Sim.Files, float64(res.Sim.Bytes)/(1<<20), res.Sim.WallTime.Seconds(), final)

	// 3. Idle CPU of the fleet.
	if d.Idle > 0 {
		c0, t0 := cpuTime(), time.Now()
		select {
		case <-time.After(d.Idle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		res.IdleCPU, res.Idle = cpuTime()-c0, time.Since(t0)
	}

	// 4. Register and drain.
	before := map[string]float64{}
	if err := scrapeCounters(f, before); err != nil {
		return nil, err
	}
	rec.mu.Lock()
	objs0 := map[string]objCount{}
	for k, c := range rec.objects {
		objs0[k] = *c
	}
	rec.mu.Unlock()
	up, err := newUpstream(f.meta.GRPCAddr(), f.upstream, o.InitialRanges, stderr)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	stopProfile, ok := startCPUProfile(d.CPUProfile, "lag --drain-cpuprofile", stderr)
	if !ok {
		return nil, fmt.Errorf("cannot write the CPU profile %s", d.CPUProfile)
	}
	defer func() { stopProfile() }() // also when the drain fails
	if d.MemProfile != "" {
		writeHeapProfile(d.MemProfile+".start", "lag --drain-memprofile", stderr)
	}
	start, cpu0 := time.Now(), cpuTime()
	if err := up.RegisterTenant(ctx, o.Sim.ClusterID, 1); err != nil {
		return nil, err
	}
	// The meta-server creates a store's stream task on its first
	// notification: one per store (its last file) starts the dispatchers,
	// which list the buffer from the start.
	for _, h := range lastFile {
		if err := up.NotifyFile(ctx, "", h); err != nil {
			return nil, err
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d.Timeout)
	for drained := false; !drained; {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			rec.mu.Lock()
			n, lo := len(rec.rangeWM), minTs(rec.rangeWM)
			rec.mu.Unlock()
			return nil, fmt.Errorf("not drained within %s: %d range(s) published, min watermark %d, final resolved ts %d", d.Timeout, n, lo, final)
		case <-tick.C:
			rec.mu.Lock()
			drained = len(rec.rangeWM) >= int(o.InitialRanges) && minTs(rec.rangeWM) >= final
			rec.mu.Unlock()
		}
	}
	res.Drain, res.CPU = time.Since(start), cpuTime()-cpu0
	if d.MemProfile != "" {
		writeHeapProfile(d.MemProfile, "lag --drain-memprofile", stderr)
	}
	stopProfile() // the drain only, not the pull
	stopProfile = func() {}
	if err := scrapeAfterDrain(ctx, f, before, res.Metrics, res.Sim.RowsCommitted, 5*time.Second); err != nil {
		return nil, err
	}
	rec.mu.Lock()
	for k, c := range rec.objects {
		b := objs0[k]
		if c.n > b.n {
			res.Objects[k] = &objCount{c.n - b.n, c.bytes - b.bytes}
		}
	}
	if rec.errs > 0 {
		fmt.Fprintf(stderr, "drain: %d written objects did not decode\n", rec.errs)
	}
	rec.mu.Unlock()

	// 5. The independent record: pull every row back.
	if d.Pull {
		stopPull, ok := startCPUProfile(d.PullProfile, "lag --pull-cpuprofile", stderr)
		if !ok {
			return nil, fmt.Errorf("cannot write the CPU profile %s", d.PullProfile)
		}
		defer stopPull()
		t0 := time.Now()
		pctx, pcancel := context.WithTimeout(ctx, d.Timeout)
		err := lagPull(pctx, f.api.GRPCAddr(), f.admin, 1, func(*apiv1.RowChange, time.Time) { res.RowsPull++ },
			func(ts uint64) bool { return ts >= final })
		pcancel()
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		res.Pulled, res.PullTime = true, time.Since(t0)
	}
	return res, nil
}

// printDrain writes the result as Markdown tables.
func printDrain(w io.Writer, o lagOptions, d drainOptions, r *drainResult) {
	secs := max(r.Drain.Seconds(), 1e-9)
	m := r.Metrics
	fmt.Fprintf(w, "tistream lag --backlog-rows %d: %d dispatcher(s), %d sorter(s), %d initial range(s), %d stores, value size %d B\n",
		d.BacklogRows, o.Dispatchers, o.Sorters, o.InitialRanges, o.Sim.Stores, o.Sim.ValueSize)
	if o.DispatcherMaxInFlight > 0 || o.SorterSnapshot > 0 {
		fmt.Fprintf(w, "tuned: dispatcher max in flight %d, sorter snapshot interval %s (0 = default)\n", o.DispatcherMaxInFlight, o.SorterSnapshot)
	}
	fmt.Fprintf(w, "backlog: %d committed rows in %d transactions (%d DDLs), %d row events, %d store files (%.1f MiB), generated in %.1f s before the tenant was registered\n",
		r.Sim.RowsCommitted, r.Sim.Txns, r.Sim.DDLs, r.Sim.RowEvents, r.Sim.Files, float64(r.Sim.Bytes)/(1<<20), r.Sim.WallTime.Seconds())
	fmt.Fprintf(w, "drained in %.2f s (registration to every range's published watermark at the final resolved ts)\n", secs)
	fmt.Fprintln(w)
	f0 := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
	f2 := func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
	mibs := func(b float64) string { return f2(b / (1 << 20) / secs) }
	fmt.Fprintf(w, "| over the %.2f s drain | count | per s | MiB | MiB/s |\n", secs)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| committed rows (sim) | %d | %s | | |\n", r.Sim.RowsCommitted, f0(float64(r.Sim.RowsCommitted)/secs))
	fmt.Fprintf(w, "| store files (sim bytes) | %d | %s | %.1f | %s |\n", r.Sim.Files, f2(float64(r.Sim.Files)/secs), float64(r.Sim.Bytes)/(1<<20), mibs(float64(r.Sim.Bytes)))
	fmt.Fprintf(w, "| dispatcher: row events read / store file bytes read | %s | %s | %.1f | %s |\n",
		f0(m["tistream_dispatcher_rows_read_total"]), f0(m["tistream_dispatcher_rows_read_total"]/secs),
		m["tistream_dispatcher_bytes_read_total"]/(1<<20), mibs(m["tistream_dispatcher_bytes_read_total"]))
	fmt.Fprintf(w, "| sorter: events in | %s | %s | | |\n", f0(m["tistream_sorter_events_total"]), f0(m["tistream_sorter_events_total"]/secs))
	pd := r.Objects["pool data files"]
	if pd == nil {
		pd = &objCount{}
	}
	fmt.Fprintf(w, "| sorter: rows flushed / pool data bytes written | %s | %s | %.1f | %s |\n",
		f0(m["tistream_sorter_rows_flushed_total"]), f0(m["tistream_sorter_rows_flushed_total"]/secs), float64(pd.bytes)/(1<<20), mibs(float64(pd.bytes)))
	fmt.Fprintln(w)
	idleRate := 0.0
	if r.Idle > 0 {
		idleRate = r.IdleCPU.Seconds() / r.Idle.Seconds()
	}
	busy := r.CPU.Seconds() - idleRate*secs
	mrows := max(float64(r.Sim.RowsCommitted)/1e6, 1e-9)
	fmt.Fprintln(w, "| process CPU (whole fleet in one process: dispatcher, sorter, meta-server, schema registry, api-server, etcd) | value |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| CPU over the drain | %.1f s (%.2f cores busy) |\n", r.CPU.Seconds(), r.CPU.Seconds()/secs)
	fmt.Fprintf(w, "| idle fleet before registration | %.3f cores (over %.1f s) |\n", idleRate, r.Idle.Seconds())
	fmt.Fprintf(w, "| CPU per million committed rows | %.1f s |\n", r.CPU.Seconds()/mrows)
	fmt.Fprintf(w, "| CPU per million committed rows, idle subtracted | %.1f s |\n", busy/mrows)
	fmt.Fprintf(w, "| CPU per GiB of store files | %.1f s |\n", r.CPU.Seconds()/max(float64(r.Sim.Bytes)/(1<<30), 1e-9))
	if r.Pulled {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "check: pulled %d rows back in %.1f s after the drain; the simulator committed %d\n", r.RowsPull, r.PullTime.Seconds(), r.Sim.RowsCommitted)
	} else {
		fmt.Fprintf(w, "\ncheck: the sorters flushed %s rows; the simulator committed %d (no pull; the flushed count may exceed it by the DDL rows of the meta range)\n", f0(m["tistream_sorter_rows_flushed_total"]), r.Sim.RowsCommitted)
	}
}

// drainCheck compares the drained row count with the simulator's.
func drainCheck(r *drainResult) error {
	if r.Pulled {
		if r.RowsPull != r.Sim.RowsCommitted {
			return fmt.Errorf("pulled %d rows, the simulator committed %d", r.RowsPull, r.Sim.RowsCommitted)
		}
		return nil
	}
	// Weaker: the sorters also flush rows the truth does not count (the
	// meta range's rows of committed DDL, it seems), so only fewer fails.
	if n := int64(r.Metrics["tistream_sorter_rows_flushed_total"]); n < r.Sim.RowsCommitted {
		return fmt.Errorf("the sorters flushed %d rows, fewer than the %d the simulator committed", n, r.Sim.RowsCommitted)
	}
	return nil
}

// scrapeAfterDrain reads the fleet's counters, less before, into into.
// The drain is seen in the published objects, and a sorter counts a
// flush's rows once the round's publication has returned (its commit
// step), a moment later: until the sorters' flushed rows reach rows, or
// for at most wait, it reads them again every 10 ms, so that a loaded
// machine's late commit step is not taken for rows never flushed.
func scrapeAfterDrain(ctx context.Context, f *fleet, before, into map[string]float64, rows int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		clear(into)
		if err := scrapeCounters(f, into); err != nil {
			return err
		}
		for k, v := range before {
			into[k] -= v
		}
		if into["tistream_sorter_rows_flushed_total"] >= float64(rows) || !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
