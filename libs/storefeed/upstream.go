package storefeed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/formats/storeline"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Options configure Run.
type Options struct {
	Store objstore.Store // the data change buffer
	// OnTenant registers the tenant with the fleet, after its schema
	// snapshot is written; OnFile notifies each uploaded file. Both may be nil.
	OnTenant func(ctx context.Context, cluster, tenant uint64) error
	OnFile   func(ctx context.Context, key string, h *formatv1.StoreFileHeader) error
	Log      *slog.Logger
}

// Stats is what Run wrote.
type Stats struct {
	Files, Rows, Bytes int64
	Dropped            int // lines after the last cut of their store, at EOF
}

// Run reads lines until EOF or an error and writes what they describe.
// Lines after a store's last cut (an open file without max_ts) are dropped
// at EOF. It returns once every file it cut is uploaded.
func Run(ctx context.Context, r io.Reader, o Options) (Stats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := &run{o: o, ctx: ctx, cancel: cancel, streams: make(map[uint64]*stream), queues: make(map[uint64]chan upload)}
	err := u.read(storeline.NewDecoder(r))
	for _, q := range u.queues {
		close(q)
	}
	u.wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			err = nil
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stats, err
}

type run struct {
	o        Options
	ctx      context.Context
	cancel   context.CancelCauseFunc
	cluster  uint64
	tenant   uint64
	producer string
	schema   bool
	streams  map[uint64]*stream
	queues   map[uint64]chan upload
	wg       sync.WaitGroup
	mu       sync.Mutex
	stats    Stats
}

type upload struct {
	key string
	h   *formatv1.StoreFileHeader
	b   []byte
}

func (u *run) read(dec *storeline.Decoder) error {
	for {
		if err := context.Cause(u.ctx); err != nil {
			return err
		}
		l, err := dec.Next()
		if err == io.EOF {
			for _, s := range u.streams {
				u.stats.Dropped += len(s.recs)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := u.line(l); err != nil {
			return err
		}
	}
}

func (u *run) line(l *storeline.Line) error {
	switch {
	case l.T == storeline.TypeHello:
		if u.cluster != 0 {
			return errors.New("a second hello line")
		}
		u.cluster, u.tenant, u.producer = l.Cluster, l.Tenant, l.Producer
		return nil
	case u.cluster == 0:
		return fmt.Errorf("%s line before the hello line", l.T)
	case l.T == storeline.TypeSchema:
		if u.schema {
			return errors.New("a second schema line")
		}
		u.schema = true
		return u.writeSchema(l.Schema)
	case !u.schema:
		return fmt.Errorf("%s line before the schema line", l.T)
	}
	s := u.streams[l.Store]
	if s == nil {
		s = newStream(l.Store)
		u.streams[l.Store] = s
	}
	switch l.T {
	case storeline.TypeStart:
		return s.start(l)
	case storeline.TypeEnd:
		return s.end(l)
	case storeline.TypeRows:
		return s.rowsOf(l)
	case storeline.TypeResolved:
		return s.resolved(l)
	case storeline.TypeCut:
		rows := s.rows
		h, b, err := s.cut(l, u.cluster, u.tenant, u.producer)
		if err != nil {
			return err
		}
		u.mu.Lock()
		u.stats.Rows += int64(rows)
		u.mu.Unlock()
		u.enqueue(upload{key: layout.StoreFileKey(u.cluster, u.tenant, s.id, h.Seq, h.MaxTs), h: h, b: b})
		return nil
	}
	return fmt.Errorf("unexpected %s line", l.T)
}

func (u *run) writeSchema(sc *storeline.Schema) error {
	var dbs, tables uint64
	for _, o := range sc.Objects {
		if o.Kind == "db" {
			dbs++
		} else {
			tables++
		}
	}
	w, err := schemasnap.NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: u.cluster, TenantId: u.tenant, Ts: sc.Ts,
		SchemaVersion: sc.SchemaVersion, CreatedUnixMs: sc.UnixMs, DbCount: dbs, TableCount: tables})
	if err != nil {
		return err
	}
	for _, o := range sc.Objects {
		if o.Kind == "db" {
			err = w.AddDatabase(o.DBID, []byte(o.Info))
		} else {
			err = w.AddTable(o.DBID, []byte(o.Info))
		}
		if err != nil {
			return err
		}
	}
	b, err := w.Finish()
	if err != nil {
		return err
	}
	if err := u.put(layout.SchemaSnapshotKey(u.cluster, u.tenant, sc.Ts), b); err != nil {
		return err
	}
	if u.o.OnTenant != nil {
		if err := u.o.OnTenant(u.ctx, u.cluster, u.tenant); err != nil {
			return fmt.Errorf("register tenant %d: %w", u.tenant, err)
		}
	}
	return nil
}

// enqueue hands a file to its store's uploader: files of one store are
// uploaded and notified in seq order, stores in parallel.
func (u *run) enqueue(up upload) {
	q := u.queues[up.h.StoreId]
	if q == nil {
		q = make(chan upload, 64)
		u.queues[up.h.StoreId] = q
		u.wg.Add(1)
		go u.uploader(q)
	}
	select {
	case q <- up:
	case <-u.ctx.Done():
	}
}

func (u *run) uploader(q <-chan upload) {
	defer u.wg.Done()
	for up := range q {
		if u.ctx.Err() != nil {
			continue // drain
		}
		if err := u.put(up.key, up.b); err != nil {
			u.cancel(err)
			continue
		}
		u.mu.Lock()
		u.stats.Files++
		u.stats.Bytes += int64(len(up.b))
		u.mu.Unlock()
		if u.o.OnFile != nil {
			if err := u.o.OnFile(u.ctx, up.key, up.h); err != nil {
				u.cancel(fmt.Errorf("notify %s: %w", up.key, err))
			}
		}
	}
}

// put creates key once. Transient errors are retried with backoff; a key
// that exists with the same bytes is a retry that already landed, with
// other bytes another producer writing the same stream.
func (u *run) put(key string, b []byte) error {
	var err error
	for try, wait := 0, 100*time.Millisecond; try < 8; try, wait = try+1, min(2*wait, 5*time.Second) {
		err = u.o.Store.PutIfAbsent(u.ctx, key, b)
		if err == nil {
			return nil
		}
		if errors.Is(err, objstore.ErrExists) {
			old, gerr := u.o.Store.Get(u.ctx, key)
			if gerr == nil && bytes.Equal(old, b) {
				return nil
			}
			return fmt.Errorf("write %s: another producer wrote it with other bytes (two producers of one stream?)", key)
		}
		if u.o.Log != nil {
			u.o.Log.Warn("upload failed, retrying", "key", key, "err", err, "try", try+1)
		}
		select {
		case <-u.ctx.Done():
			return context.Cause(u.ctx)
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("write %s: %w", key, err)
}
