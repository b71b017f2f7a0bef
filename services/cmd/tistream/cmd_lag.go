package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tistream/tistream/client"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/svc"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func init() {
	register(command{name: "lag", summary: "benchmark a whole in-process fleet: end-to-end row lag, per-stage resolved lag, throughput", run: runLag})
}

// lagOptions configure one `tistream lag` run.
type lagOptions struct {
	Sim           sim.Config
	Dispatchers   int
	Sorters       int
	InitialRanges uint32
	DataDir       string        // parent of the run's temporary directory
	Warmup        time.Duration // lag samples before this (from the sim's start) are left out
	Sample        time.Duration // how often the stages' resolved ts are sampled
	Timeout       time.Duration // after the sim ends, how long the pull may take to catch up
	// Service knobs (0 = the service's default).
	SorterFlush, APIPoll, RegistryPoll, DispatcherPoll time.Duration
	SorterSnapshot                                     time.Duration
	DispatcherMaxInFlight                              int
	// TablePulls: also pull this many tables one by one (cmd_lag_tables.go).
	TablePulls int
	// Insecure runs the fleet without TLS (to measure what TLS costs).
	Insecure bool
	LogLevel string
	// Elastic: service flags, a scale-down, a timeline (cmd_lag_elastic.go).
	Elastic elasticOptions
}

// lagDist is a distribution of lags, in milliseconds.
type lagDist struct {
	ms []float64
}

func (d *lagDist) add(ms float64) { d.ms = append(d.ms, ms) }

func (d *lagDist) sort() { sort.Float64s(d.ms) }

// q is the q-quantile (nearest rank) of the sorted samples; NaN if none.
func (d *lagDist) q(q float64) float64 {
	if len(d.ms) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(d.ms)))) - 1
	return d.ms[min(max(i, 0), len(d.ms)-1)]
}

// lagResult is what a run measured.
type lagResult struct {
	Sim     sim.Stats
	LogPath string
	Wall    time.Duration // sim start to the pull's catch-up

	RowsPulled     int64   // every row received
	Resumes        int     // reconnections of the tenant pull (UNAVAILABLE)
	Rows           lagDist // end-to-end lag of the rows committed after the warm-up
	Buffer         lagDist // per-stage resolved-ts lag samples
	BufferResolved lagDist
	Pool           lagDist
	Puller         lagDist

	Objects map[string]*objCount // by kind of object
	Metrics map[string]float64   // summed Prometheus counters of the workers
	// Requests are the object-store requests of the fleet and the
	// simulator over the traffic window (requests.go).
	Requests *requestRun
	// Tables are the table pulls' lags (--table-pulls).
	Tables map[int64]*tableLag
	// Elastic is the timeline and scale-down (cmd_lag_elastic.go);
	// Start, Warm and SimEnd bound its windows.
	Elastic             *elasticRun
	Start, Warm, SimEnd time.Time

	CPU     time.Duration // user+system CPU of the process over the run
	Elapsed time.Duration // the sim's wall time (the traffic window)
}

type objCount struct{ n, bytes int64 }

// lagRecorder watches every successful write to the object store: store
// files (buffer stage) and range log entries (pool stage).
type lagRecorder struct {
	mu       sync.Mutex
	storeMax map[uint64]uint64 // latest store file max_ts per store
	// latest store file resolved ts per store: the minimum over the regions
	// of the file of the last resolved ts each got in it
	storeResolved map[uint64]uint64
	rangeWM       map[uint64]uint64 // latest published watermark per live range
	sealed        map[uint64]bool   // ranges whose log ends with SEAL
	objects       map[string]*objCount
	errs          int

	// streams read each store's files in order (format version 2 headers
	// list what changed since the last full list).
	fileMu  sync.Mutex
	streams map[[2]uint64]*storefile.Stream
}

// openStoreFile opens a store file as the next file of its store's stream.
func (r *lagRecorder) openStoreFile(name layout.StoreFileName, key string, data []byte) (*storefile.Reader, error) {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.streams == nil {
		r.streams = map[[2]uint64]*storefile.Stream{}
	}
	id := [2]uint64{name.Tenant, name.Store}
	st := r.streams[id]
	if st == nil {
		st = storefile.NewStream(nil)
		r.streams[id] = st
	}
	return st.Open(key, data)
}

func newLagRecorder() *lagRecorder {
	return &lagRecorder{storeMax: map[uint64]uint64{}, storeResolved: map[uint64]uint64{}, rangeWM: map[uint64]uint64{}, objects: map[string]*objCount{}}
}

// objectKind names the family of an object key for the byte counts.
func objectKind(key string) string {
	switch {
	case strings.HasPrefix(key, layout.BufferRoot):
		if strings.Contains(key, "/store-") {
			return "buffer store files"
		}
		return "buffer other"
	case strings.HasPrefix(key, layout.PoolRoot):
		switch {
		case strings.Contains(key, "/data/"), strings.Contains(key, "/pub/"):
			return "pool data files" // format 1 data files, format 2 group publications
		case strings.Contains(key, "/seg/"):
			return "pool segments"
		case strings.Contains(key, "/log/"):
			return "pool range log"
		}
		return "pool other"
	case strings.HasPrefix(key, layout.SnapshotRoot):
		return "sorter snapshots"
	case strings.HasPrefix(key, layout.SchemaRegRoot):
		return "schema registry"
	}
	return "other"
}

// rangeLogKey reports whether key is a range log entry:
// committed_data_pool/tenant-T/range-R/log/SEQ.
func rangeLogKey(key string) bool {
	rest, ok := strings.CutPrefix(key, layout.PoolRoot)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 4 && strings.HasPrefix(parts[0], "tenant-") && strings.HasPrefix(parts[1], "range-") && parts[2] == "log"
}

// groupPubKey reports whether key is a group publication:
// committed_data_pool/tenant-T/group-G/pub/SEQ.
func groupPubKey(key string) bool {
	rest, ok := strings.CutPrefix(key, layout.PoolRoot)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 4 && strings.HasPrefix(parts[0], "tenant-") && strings.HasPrefix(parts[1], "group-") && parts[2] == "pub"
}

// written records an object of size bytes written under key; data is its
// bytes, or for a group publication at least its first part (the index).
func (r *lagRecorder) written(key string, data []byte, size int) {
	var (
		fileHdr      *formatv1.StoreFileHeader
		fileResolved uint64
		entry        *formatv1.RangeLogEntry
		pub          *pool.Pub
		bad          bool
	)
	if name, err := layout.ParseStoreFileKey(key); err == nil {
		if rd, err := r.openStoreFile(name, key, data); err == nil {
			fileHdr = rd.Header()
			if fileResolved, err = storeFileResolved(rd); err != nil {
				bad = true
			}
		} else {
			bad = true
		}
	} else if rangeLogKey(key) {
		if e, err := pool.DecodeEntry(key, data); err == nil {
			entry = e
		} else {
			bad = true
		}
	} else if groupPubKey(key) {
		if p, _, err := pool.DecodePubIndex(key, data); err == nil {
			pub = p
		} else {
			bad = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := objectKind(key)
	c := r.objects[k]
	if c == nil {
		c = &objCount{}
		r.objects[k] = c
	}
	c.n++
	c.bytes += int64(size)
	if bad {
		r.errs++
	}
	if fileHdr != nil && fileHdr.MaxTs > r.storeMax[fileHdr.StoreId] {
		r.storeMax[fileHdr.StoreId] = fileHdr.MaxTs
	}
	if fileHdr != nil && fileResolved > r.storeResolved[fileHdr.StoreId] {
		r.storeResolved[fileHdr.StoreId] = fileResolved
	}
	if entry != nil {
		if entry.Kind == formatv1.RangeLogEntry_KIND_SEAL {
			delete(r.rangeWM, entry.RangeId) // its successors carry on
			if r.sealed == nil {
				r.sealed = map[uint64]bool{}
			}
			r.sealed[entry.RangeId] = true
		} else if entry.Watermark >= r.rangeWM[entry.RangeId] {
			r.rangeWM[entry.RangeId] = entry.Watermark
		}
	}
	if pub != nil && !pub.IsFence() {
		for id, wm := range pub.Watermarks() {
			if !r.sealed[id] && wm >= r.rangeWM[id] {
				r.rangeWM[id] = wm
			}
		}
	}
}

// minTs is the minimum of m's values (0 if empty).
func minTs(m map[uint64]uint64) uint64 {
	var lo uint64
	for _, v := range m {
		if lo == 0 || v < lo {
			lo = v
		}
	}
	return lo
}

func (r *lagRecorder) stages() (bufferMax, bufferResolved, pool uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return minTs(r.storeMax), minTs(r.storeResolved), minTs(r.rangeWM)
}

// storeFileResolved decodes a store file and returns the minimum over its
// regions of the last resolved ts each got in the file (0 if none): what
// the store had resolved when it cut the file, held back by open locks.
func storeFileResolved(rd *storefile.Reader) (uint64, error) {
	last := map[uint64]uint64{}
	var group *formatv1.LeaderResolvedTs // the last LeaderResolvedTs
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if rec.LeaderResolved != nil {
			group = rec.LeaderResolved
		}
		if rec.Event == nil {
			continue
		}
		for _, e := range rec.Event.Events {
			if x, ok := e.Event.(*cdcpb.Event_ResolvedTs); ok {
				last[e.RegionId] = max(last[e.RegionId], x.ResolvedTs)
			}
		}
		if rt := rec.Event.ResolvedTs; rt != nil {
			for _, id := range rt.Regions {
				last[id] = max(last[id], rt.Ts)
			}
		}
	}
	if group == nil {
		return minTs(last), nil
	}
	// Every region but the excepted ones is at the group's ts.
	lo := group.Ts
	for _, id := range group.ExceptRegions {
		if v, ok := last[id]; ok {
			lo = min(lo, v)
		}
	}
	return lo, nil
}

// recStore is an object store that tells a lagRecorder of every write.
// Objects written in parts go on in parts, and ranged reads into a buffer
// into it, as through the services' own stores (a wrapper without
// PartsPutter would join every publication into a new buffer first, one
// without RangeIntoGetter make every pool read a new buffer: costs the
// measured fleet does not have).
type recStore struct {
	objstore.Store
	r *lagRecorder
}

var (
	_ objstore.PartsPutter     = recStore{}
	_ objstore.RangeIntoGetter = recStore{}
)

// GetRangeInto passes buf on: the api-server's pulls read the pool into
// recycled buffers through the services' own stores, and so through this.
func (s recStore) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	return objstore.GetRangeInto(ctx, s.Store, key, off, buf)
}

func (s recStore) Put(ctx context.Context, key string, data []byte) error {
	err := s.Store.Put(ctx, key, data)
	if err == nil {
		s.r.written(key, data, len(data))
	}
	return err
}

func (s recStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	err := s.Store.PutIfAbsent(ctx, key, data)
	if err == nil {
		s.r.written(key, data, len(data))
	}
	return err
}

func (s recStore) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return s.putParts(ctx, key, parts, objstore.PutParts)
}

func (s recStore) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return s.putParts(ctx, key, parts, objstore.PutIfAbsentParts)
}

func (s recStore) putParts(ctx context.Context, key string, parts [][]byte, put func(context.Context, objstore.Store, string, ...[]byte) error) error {
	if err := put(ctx, s.Store, key, parts...); err != nil {
		return err
	}
	var data []byte
	if groupPubKey(key) && len(parts) > 0 {
		data = parts[0] // the index: all the recorder reads of a publication
	} else {
		data = bytes.Join(parts, nil)
	}
	s.r.written(key, data, objstore.PartsLen(parts))
	return nil
}

// lagMs is now minus the physical time of ts, in milliseconds.
func lagMs(now time.Time, ts uint64) float64 {
	return float64(now.UnixMicro()-sim.PhysicalMs(ts)*1000) / 1000
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scrapeCounters adds to into, for each metric whose name starts with
// "tistream_", the sum of its samples over the dispatchers and sorters (a
// histogram as name_count and name_sum). It reads each member's registry
// in the process, not its /metrics page: a member the run stopped on
// purpose still counts what it did before, and no failed request can make
// a counter read as 0.
func scrapeCounters(f *fleet, into map[string]float64) error {
	for _, m := range f.members {
		kind, _, _ := strings.Cut(m.name, "-")
		if kind != "dispatcher" && kind != "sorter" {
			continue
		}
		mfs, err := m.reg.Gather()
		if err != nil {
			return fmt.Errorf("metrics of %s: %w", m.name, err)
		}
		for _, mf := range mfs {
			name := mf.GetName()
			if !strings.HasPrefix(name, "tistream_") {
				continue
			}
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, x := range mf.GetMetric() {
					into[name+"_count"] += float64(x.GetHistogram().GetSampleCount())
					into[name+"_sum"] += x.GetHistogram().GetSampleSum()
				}
				continue
			}
			into[name] += sumMetric(mf.GetMetric())
		}
	}
	return nil
}

// benchFleet is the in-process fleet the lag and drain benchmarks
// measure: in a temporary directory (removed by close), with its logs in a
// file kept next to it, every object-store write seen by a recorder.
type benchFleet struct {
	*fleet
	rec     *lagRecorder
	logPath string
	logf    *os.File
	dir     string
}

func startBenchFleet(ctx context.Context, o lagOptions, name string, stderr io.Writer) (_ *benchFleet, err error) {
	parent := o.DataDir
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	b := &benchFleet{rec: newLagRecorder()}
	if b.dir, err = os.MkdirTemp(parent, "tistream-"+name+"-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = b.close()
		}
	}()
	if b.logf, err = os.CreateTemp(parent, "tistream-"+name+"-*.log"); err != nil {
		return nil, err
	}
	b.logPath = b.logf.Name()
	fmt.Fprintf(stderr, "%s: fleet logs in %s\n", name, b.logPath)
	log, err := svc.NewLogger(o.LogLevel, "text", b.logf)
	if err != nil {
		return nil, err
	}
	b.fleet, err = startFleet(ctx, fleetOptions{Dir: b.dir, Host: "127.0.0.1", Dispatchers: o.Dispatchers, Sorters: o.Sorters,
		LogLevel: o.LogLevel, Log: log, Tune: o.tune(), Insecure: o.Insecure,
		Wrap: func(s objstore.Store) objstore.Store { return recStore{s, b.rec} }})
	if err != nil {
		return nil, fmt.Errorf("start the fleet: %w", err)
	}
	return b, nil
}

// close stops the fleet, closes the log and removes the directory.
func (b *benchFleet) close() error {
	var err error
	if b.fleet != nil {
		err = b.fleet.stop(context.Background())
	}
	if b.logf != nil {
		b.logf.Close()
	}
	os.RemoveAll(b.dir)
	return err
}

// lagBench starts a fleet, pushes the simulator into it in real time, pulls
// the tenant back and measures.
func lagBench(ctx context.Context, o lagOptions, stderr io.Writer) (res *lagResult, err error) {
	res = &lagResult{Objects: map[string]*objCount{}, Metrics: map[string]float64{}}
	o.Sim.Realtime = true
	if err := o.Sim.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bf, err := startBenchFleet(ctx, o, "lag", stderr)
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

	store, err := objstore.Open(ctx, f.storeURL)
	if err != nil {
		return nil, err
	}
	up, err := newUpstream(f.meta.GRPCAddr(), f.upstream, o.InitialRanges, stderr)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	upReg := prometheus.NewRegistry()
	upStore := metered.NewMetrics(upReg).Wrap(recStore{store, rec}, upstreamService, layout.Labels)
	el := newElasticRun(o)
	res.Elastic = el
	s, err := sim.New(o.Sim, sim.Options{Store: upStore, OnTenant: up.RegisterTenant, OnFile: up.NotifyFile, Truth: el.truthSink()})
	if err != nil {
		return nil, err
	}
	gatherers := append(fleetRegistries(f), upReg)
	reqBefore, err := gatherRequests(gatherers...)
	if err != nil {
		return nil, err
	}

	var (
		lastResolved atomic.Uint64 // the puller's last resolved ts
		finalTs      atomic.Uint64 // the sim's final resolved ts, once it is done
		simDone      = make(chan struct{})
		pullDone     = make(chan error, 1)
		simErr       error
		rowsMu       sync.Mutex
	)
	start := time.Now()
	cpu0 := cpuTime()
	warm := start.Add(o.Warmup)
	tp := newTablePulls(o.TablePulls, f.api.GRPCAddr(), f.admin, warm, &finalTs)
	res.Start, res.Warm = start, warm
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		el.watch(watchCtx, f, start, 2*f.stopTo+30*time.Second, stderr)
	}()
	defer func() { stopWatch(); <-watched }()
	go func() {
		defer close(simDone)
		res.Sim, simErr = s.Run(ctx)
		finalTs.Store(res.Sim.FinalResolvedTs)
	}()
	go func() {
		pullDone <- lagPullResuming(ctx, f.api.GRPCAddr(), f.admin, 1, func(r *apiv1.RowChange, now time.Time) {
			rowsMu.Lock()
			res.RowsPulled++
			ms := lagMs(now, r.CommitTs)
			if sim.PhysicalMs(r.CommitTs) >= warm.UnixMilli() {
				res.Rows.add(ms)
			}
			rowsMu.Unlock()
			el.row(r, ms)
			tp.tenantRow(ctx, r, ms)
		}, func(ts uint64) bool {
			lastResolved.Store(ts)
			fin := finalTs.Load()
			return fin != 0 && ts >= fin
		}, &res.Resumes)
	}()

	// Sample the stages while traffic flows.
	tick := time.NewTicker(o.Sample)
	defer tick.Stop()
	pullErr := error(nil)
	pulled := false
sampling:
	for {
		select {
		case <-simDone:
			break sampling
		case pullErr = <-pullDone:
			pulled = true
			if pullErr != nil {
				cancel()
				<-simDone
				return nil, fmt.Errorf("pull: %w", pullErr)
			}
		case now := <-tick.C:
			if now.Before(warm) {
				continue
			}
			b, br, p := rec.stages()
			if b != 0 {
				res.Buffer.add(lagMs(now, b))
			}
			if br != 0 {
				res.BufferResolved.add(lagMs(now, br))
			}
			if p != 0 {
				res.Pool.add(lagMs(now, p))
			}
			if r := lastResolved.Load(); r != 0 {
				res.Puller.add(lagMs(now, r))
			}
		}
	}
	if simErr != nil {
		cancel()
		return nil, fmt.Errorf("sim: %w", simErr)
	}
	res.Elapsed = res.Sim.WallTime
	res.SimEnd = time.Now()
	reqAfter, err := gatherRequests(gatherers...)
	if err != nil {
		return nil, err
	}
	res.Requests = &requestRun{Stores: o.Sim.Stores * o.Sim.Tenants, Ranges: int(o.InitialRanges) * o.Sim.Tenants, Tables: o.Sim.Tables * o.Sim.Tenants,
		Seconds: res.Elapsed.Seconds(), Rows: res.Sim.RowsCommitted}
	res.Requests.Requests, res.Requests.Bytes = reqAfter.since(reqBefore)
	if !pulled {
		select {
		case pullErr = <-pullDone:
		case <-time.After(o.Timeout):
			cancel()
			pullErr = fmt.Errorf("the pull did not reach the final resolved ts %d within %s of the end of traffic (last %d)",
				finalTs.Load(), o.Timeout, lastResolved.Load())
			<-pullDone
		case <-ctx.Done():
			pullErr = ctx.Err()
		}
	}
	if pullErr != nil {
		return nil, fmt.Errorf("pull: %w", pullErr)
	}
	res.Wall = time.Since(start)
	res.CPU = cpuTime() - cpu0
	res.Tables = tp.wait(o.Timeout)
	stopWatch()
	<-watched
	if err := el.verify(); err != nil {
		return nil, err
	}
	if err := scrapeCounters(f, res.Metrics); err != nil {
		return nil, err
	}
	rec.mu.Lock()
	for k, c := range rec.objects {
		res.Objects[k] = &objCount{c.n, c.bytes}
	}
	if rec.errs > 0 {
		fmt.Fprintf(stderr, "lag: %d written objects did not decode\n", rec.errs)
	}
	rec.mu.Unlock()
	for _, d := range []*lagDist{&res.Rows, &res.Buffer, &res.BufferResolved, &res.Pool, &res.Puller} {
		d.sort()
	}
	return res, nil
}

// lagPull pulls a tenant from the start, retrying until the tenant exists,
// and calls row for every row and resolved for every resolved ts until
// resolved returns true.
func lagPull(ctx context.Context, addr string, creds *clientCreds, tenant uint64, row func(*apiv1.RowChange, time.Time), resolved func(uint64) bool) error {
	return lagPullWith(ctx, addr, creds, func(ctx context.Context, c apiv1.TiStreamServiceClient) (func() ([]*apiv1.PullEvent, error), error) {
		return recvOf(c.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: tenant}, client.PullDecoding()))
	}, fmt.Sprintf("tenant %d", tenant), row, resolved)
}

// lagPullTable is lagPull of one table (PullTable).
func lagPullTable(ctx context.Context, addr string, creds *clientCreds, tenant uint64, table int64, row func(*apiv1.RowChange, time.Time), resolved func(uint64) bool) error {
	return lagPullWith(ctx, addr, creds, func(ctx context.Context, c apiv1.TiStreamServiceClient) (func() ([]*apiv1.PullEvent, error), error) {
		return recvOf(c.PullTable(ctx, &apiv1.PullTableRequest{TenantId: tenant, TableId: table}))
	}, fmt.Sprintf("tenant %d table %d", tenant, table), row, resolved)
}

// recvOf turns an opened pull stream into a receiver of its events.
func recvOf[R interface{ GetEvents() []*apiv1.PullEvent }](s interface{ Recv() (R, error) }, err error) (func() ([]*apiv1.PullEvent, error), error) {
	if err != nil {
		return nil, err
	}
	return func() ([]*apiv1.PullEvent, error) {
		r, err := s.Recv()
		if err != nil {
			return nil, err
		}
		return r.GetEvents(), nil
	}, nil
}

// lagPullWith opens a pull with open (retrying until its first message),
// and calls row and resolved for its events until resolved returns true.
func lagPullWith(ctx context.Context, addr string, creds *clientCreds,
	open func(context.Context, apiv1.TiStreamServiceClient) (func() ([]*apiv1.PullEvent, error), error),
	what string, row func(*apiv1.RowChange, time.Time), resolved func(uint64) bool) error {
	conn, err := creds.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := apiv1.NewTiStreamServiceClient(conn)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(time.Minute)
	for {
		recv, err := open(ctx, c)
		var events []*apiv1.PullEvent
		if err == nil {
			events, err = recv()
		}
		if err != nil {
			// Nothing received yet: the tenant may not be registered.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %w", what, err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for {
			now := time.Now()
			for _, ev := range events {
				switch x := ev.Event.(type) {
				case *apiv1.PullEvent_Row:
					row(x.Row, now)
				case *apiv1.PullEvent_Resolved:
					if resolved(x.Resolved.Ts) {
						return nil
					}
				}
			}
			if events, err = recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return errors.New("the api-server ended the pull")
				}
				return err
			}
		}
	}
}

func fmtMs(ms float64) string {
	if math.IsNaN(ms) {
		return "-"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}

// printLag writes the result as Markdown tables.
func printLag(w io.Writer, o lagOptions, r *lagResult) {
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(w, "tistream lag: %s at %d rows/s, store flush every %s, %d dispatcher(s), %d sorter(s), %d initial range(s); warm-up %s left out\n",
		o.Sim.Duration, o.Sim.RowsPerSec, o.Sim.FlushInterval, o.Dispatchers, o.Sorters, o.InitialRanges, o.Warmup)
	fmt.Fprintf(w, "sim: %d rows committed in %d transactions, %d store files (%.1f MiB), %.1f s wall; pulled %d rows, caught up %.1f s after the sim started\n",
		r.Sim.RowsCommitted, r.Sim.Txns, r.Sim.Files, float64(r.Sim.Bytes)/(1<<20), secs, r.RowsPulled, r.Wall.Seconds())
	if r.Resumes > 0 {
		fmt.Fprintf(w, "the tenant pull was ended with UNAVAILABLE and resumed from its last resolved ts + 1 %d time(s) (fleet log: \"pull failed\")\n", r.Resumes)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| end-to-end row lag (commit → puller) | count | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| rows committed after the warm-up | %d | %s | %s | %s | %s |\n", len(r.Rows.ms),
		fmtMs(r.Rows.q(.5)), fmtMs(r.Rows.q(.9)), fmtMs(r.Rows.q(.99)), fmtMs(r.Rows.q(1)))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| resolved-ts lag by stage (sampled every %s) | p50 ms | p99 ms | max ms | adds (p50) ms |\n", o.Sample)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	prev := 0.0
	for _, st := range []struct {
		name string
		d    *lagDist
	}{
		{"buffer: min over stores of the last store file's max_ts (cut ts)", &r.Buffer},
		{"buffer: min over stores of the last store file's resolved ts (held by open locks)", &r.BufferResolved},
		{"pool: min over ranges of the last published watermark", &r.Pool},
		{"puller: last resolved event", &r.Puller},
	} {
		p50 := st.d.q(.5)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", st.name, fmtMs(p50), fmtMs(st.d.q(.99)), fmtMs(st.d.q(1)), fmtMs(p50-prev))
		if !math.IsNaN(p50) {
			prev = p50
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| throughput over the %.1f s of traffic | rows/s | MiB/s |\n", secs)
	fmt.Fprintln(w, "|---|---:|---:|")
	mib := func(b float64) string { return strconv.FormatFloat(b/(1<<20)/secs, 'f', 2, 64) }
	rps := func(n float64) string { return strconv.FormatFloat(n/secs, 'f', 0, 64) }
	m := r.Metrics
	fmt.Fprintf(w, "| dispatcher(s) read (row events / store file bytes) | %s | %s |\n", rps(m["tistream_dispatcher_rows_read_total"]), mib(m["tistream_dispatcher_bytes_read_total"]))
	pd := r.Objects["pool data files"]
	if pd == nil {
		pd = &objCount{}
	}
	fmt.Fprintf(w, "| sorter(s) in (events) / out (rows flushed, pool data bytes) | %s / %s | %s |\n",
		rps(m["tistream_sorter_events_total"]), rps(m["tistream_sorter_rows_flushed_total"]), mib(float64(pd.bytes)))
	fmt.Fprintf(w, "| puller (rows received) | %s | |\n", rps(float64(r.RowsPulled)))
	fmt.Fprintf(w, "process CPU %.1f s over %.1f s wall (%.2f cores busy, sim + fleet + puller together)\n",
		r.CPU.Seconds(), r.Wall.Seconds(), r.CPU.Seconds()/max(r.Wall.Seconds(), 1e-9))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| objects written | count | MiB |")
	fmt.Fprintln(w, "|---|---:|---:|")
	kinds := make([]string, 0, len(r.Objects))
	for k := range r.Objects {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "| %s | %d | %.2f |\n", k, r.Objects[k].n, float64(r.Objects[k].bytes)/(1<<20))
	}
}

func runLag(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := lagOptions{Sim: sim.DefaultConfig(), LogLevel: "info", Sample: 50 * time.Millisecond}
	o.Sim.RowsPerSec = 10000
	o.Sim.Duration = 30 * time.Second
	o.Sim.RegisterFlags(fs) // --duration, --rows-per-sec, --flush-interval and the rest of the simulator's
	fs.IntVar(&o.Dispatchers, "dispatchers", 1, "dispatchers to run")
	fs.IntVar(&o.Sorters, "sorters", 1, "sorters to run")
	initial := fs.Uint("initial-ranges", 4, "ranges the tenant starts with")
	fs.StringVar(&o.DataDir, "data-dir", "", "parent of the run's temporary directory, removed at the end, and of its log file (default: the system temp dir)")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "leave out lags of the first this long of traffic")
	fs.DurationVar(&o.Timeout, "timeout", time.Minute, "how long the pull may take to catch up after the end of traffic")
	fs.DurationVar(&o.SorterFlush, "sorter-flush-interval", 0, "the sorters' flush interval (0 = default)")
	fs.DurationVar(&o.APIPoll, "api-poll-interval", 0, "the api-server's poll interval (0 = default)")
	fs.DurationVar(&o.RegistryPoll, "registry-poll-interval", 0, "the schema registry's poll interval of the pool's meta range (0 = default)")
	fs.DurationVar(&o.DispatcherPoll, "dispatcher-poll-interval", 0, "the dispatchers' buffer listing interval (0 = default)")
	fs.DurationVar(&o.SorterSnapshot, "sorter-snapshot-interval", 0, "the sorters' snapshot interval, which paces their durable acks (0 = default)")
	fs.IntVar(&o.DispatcherMaxInFlight, "dispatcher-max-in-flight", 0, "the dispatchers' unacknowledged files per stream (0 = default)")
	fs.IntVar(&o.TablePulls, "table-pulls", 0, "also pull the first N tables the tenant pull sees, one PullTable each, and print each one's row lag (with --long-txn-table: what a lock does to the other tables)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "the services' log level")
	fs.BoolVar(&o.Insecure, "insecure", false, "run the fleet without TLS (default: TLS everywhere, as tistream up): to measure what TLS costs")
	requestsOut := fs.String("requests-out", "", "write the run's object-store request counts (JSON) here, for `tistream cost`")
	requestsLabel := fs.String("requests-label", "", "the run's name in the request counts (default: its shape)")
	o.Elastic.register(fs)
	var d drainOptions
	fs.Int64Var(&d.BacklogRows, "backlog-rows", 0, "drain mode: generate a backlog of this many row changes (not in real time, at --rows-per-sec of simulated time) before registering the tenant, then time how fast the fleet drains it (0 = the real-time lag mode)")
	fs.BoolVar(&d.Pull, "backlog-pull", true, "drain mode: pull the tenant after the drain and check its row count (false = check the sorters' rows flushed instead)")
	fs.DurationVar(&d.Timeout, "drain-timeout", 30*time.Minute, "drain mode: how long the drain (and then the pull) may take")
	fs.StringVar(&d.MemProfile, "drain-memprofile", "", "drain mode: write heap profiles of the in-process fleet at registration (this file + .start) and once drained (this file): what the drain allocated is go tool pprof -sample_index=alloc_space -diff_base FILE.start FILE")
	fs.StringVar(&d.PullProfile, "pull-cpuprofile", "", "drain mode: write a CPU profile of the pull after the drain (the api-server serving the tenant and the client reading it, in one process) to this file")
	fs.StringVar(&d.CPUProfile, "drain-cpuprofile", "", "drain mode: write a CPU profile of the drain (registration until drained; the whole in-process fleet) to this file, for go tool pprof")
	fs.DurationVar(&d.Idle, "idle-sample", 2*time.Second, "drain mode: how long to sample the idle fleet's CPU before registering the tenant")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.Dispatchers < 1 || o.Sorters < 1 || *initial < 1 {
		fmt.Fprintln(stderr, "tistream lag: --dispatchers, --sorters and --initial-ranges must be at least 1")
		return 2
	}
	o.InitialRanges = uint32(*initial)
	if err := o.Elastic.check(o.Sorters); err != nil {
		fmt.Fprintf(stderr, "tistream lag: %v\n", err)
		return 2
	}
	if o.DataDir != "" {
		if abs, err := filepath.Abs(o.DataDir); err == nil {
			o.DataDir = abs
		}
	}
	if d.BacklogRows > 0 {
		r, err := drainBench(ctx, o, d, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tistream lag: %v\n", err)
			return 1
		}
		printDrain(stdout, o, d, r)
		if err := drainCheck(r); err != nil {
			fmt.Fprintf(stderr, "tistream lag: %v\n", err)
			return 1
		}
		return 0
	}
	r, err := lagBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tistream lag: %v\n", err)
		return 1
	}
	printLag(stdout, o, r)
	r.Requests.Label = *requestsLabel
	if r.Requests.Label == "" {
		r.Requests.Label = fmt.Sprintf("%d ranges, %d rows/s", o.InitialRanges, o.Sim.RowsPerSec)
	}
	r.Requests.LagP50Ms, r.Requests.LagP99Ms = finiteOr0(r.Rows.q(.5)), finiteOr0(r.Rows.q(.99))
	r.Elastic.print(stdout, r.Start, r.Warm, r.SimEnd)
	if r.Elastic.digest != nil {
		fmt.Fprintf(stdout, "\nverify: the %d rows pulled are the truth's rows, each once (digest of table, key, start and commit ts, op, value)\n", r.Elastic.digest.snapshot().n)
	}
	printTableLags(stdout, r.Tables)
	printRequests(stdout, r.Requests)
	printRequestsPerMiB(stdout, r.Requests, r.Sim.Bytes)
	if *requestsOut != "" {
		if err := writeRequestRun(*requestsOut, r.Requests); err != nil {
			fmt.Fprintf(stderr, "tistream lag: --requests-out: %v\n", err)
			return 1
		}
	}
	if o.Sim.Tenants == 1 && r.RowsPulled != r.Sim.RowsCommitted {
		fmt.Fprintf(stderr, "tistream lag: pulled %d rows, the simulator committed %d\n", r.RowsPulled, r.Sim.RowsCommitted)
		return 1
	}
	return 0
}
