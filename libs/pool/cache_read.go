package pool

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// ReadOptions tune how readers fetch the pool. The zero value reads every
// object directly, as OpenRangeReader and NewPuller do.
// DefaultMaxEntriesPerPoll is the api-server's ReadOptions.MaxEntriesPerPoll
// by default (its --max-entries-per-poll); the ordering core's benchmark
// reads with it too.
const DefaultMaxEntriesPerPoll = 16

// DefaultMaxBytesPerPoll is the api-server's ReadOptions.MaxBytesPerPoll by
// default (its --max-bytes-per-poll), and the benchmark's.
const DefaultMaxBytesPerPoll = 1 << 20

type ReadOptions struct {
	// Cache, when set, is shared by every reader given it: log entries, data
	// files and manifests are fetched and decoded once for all of them.
	Cache *Cache
	// MaxEntriesPerPoll bounds the log entries a Puller reads per range in
	// one Poll (0 = everything published), so a reader far behind catches up
	// in steps of bounded memory instead of reading the whole backlog at once.
	MaxEntriesPerPoll int
	// MaxBytesPerPoll bounds the bytes of rows (keys, values, old values)
	// a Puller reads per range in one Poll, once it read one entry (0 = no
	// bound): with entries alone, a poll's memory grows with the size of
	// the publications (measured: reading 4M rows of 64 tables back, 16
	// sections of ~730 KB per table per poll, 0.9-1.2 GB allocated and
	// 625-701 MiB peak RSS; with 1 MiB, 0.34-0.41 GB and 449-533 MiB).
	MaxBytesPerPoll int64
	// Heads, when set, holds what the publication notices announce: a
	// reader polling for a group's next publication does not GET a seq
	// above a fresh announcement (see Heads).
	Heads *Heads
	// Releases says the caller calls Puller.Release once it is done with
	// the rows Poll returned (the api-server does after sending them): the
	// Puller holds what they point into until then, and the buffers and
	// slices are recycled after. Without it the Puller keeps nothing it
	// returned (a caller that keeps rows as long as it likes, or forever),
	// and nothing its rows point into is ever read into again.
	Releases bool
}

// Per-object overheads in the cache's size estimates (struct headers, map
// and list entries).
const (
	entryOverhead = 512
	rowOverhead   = 96
)

// cachedFile is a decoded committed data file: every row, in order.
type cachedFile struct {
	header *formatv1.CommittedFileHeader
	rows   []Row
	bytes  int64 // estimated memory held
	// inPlace: rows point into the bytes decoded (given as their own);
	// buf, when set, is the read buffer they are in.
	inPlace bool
	buf     *readBuf
}

func (f *cachedFile) size() int64 { return f.bytes }

// getEntry reads log entry seq, through the cache when there is one.
func (r *RangeReader) getEntry(ctx context.Context, seq uint64) (*formatv1.RangeLogEntry, error) {
	if r.cache == nil {
		return GetEntry(ctx, r.store, r.tenant, r.id, seq)
	}
	return r.cache.entry(ctx, r.store, r.tenant, r.id, seq, false)
}

// pollEntry reads the entry after the last one consumed: "not found" means
// nothing new yet, and may be answered from the cache's memory of a recent
// "not found" (shared by every reader polling the range).
func (r *RangeReader) pollEntry(ctx context.Context, seq uint64) (*formatv1.RangeLogEntry, error) {
	if r.cache == nil {
		return GetEntry(ctx, r.store, r.tenant, r.id, seq)
	}
	return r.cache.entry(ctx, r.store, r.tenant, r.id, seq, true)
}

// Entry is GetEntry through the cache.
func (c *Cache) Entry(ctx context.Context, store objstore.Store, tenant, rangeID, seq uint64) (*formatv1.RangeLogEntry, error) {
	return c.entry(ctx, store, tenant, rangeID, seq, false)
}

func (c *Cache) entry(ctx context.Context, store objstore.Store, tenant, rangeID, seq uint64, negative bool) (*formatv1.RangeLogEntry, error) {
	v, err := c.get(ctx, layout.RangeLogKey(tenant, rangeID, seq), negative, func(ctx context.Context) (any, int64, error) {
		e, err := GetEntry(ctx, store, tenant, rangeID, seq)
		if err != nil {
			return nil, 0, err
		}
		return e, int64(proto.Size(e)) + entryOverhead, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*formatv1.RangeLogEntry), nil
}

// readCachedFile returns the rows of the file entry e publishes with
// commit_ts >= r.from, decoded once for all readers. The rows are shared:
// the slice is capped so appending to it copies.
func (r *RangeReader) readCachedFile(ctx context.Context, e *formatv1.RangeLogEntry) ([]Row, error) {
	key := e.File.Key
	v, err := r.cache.get(ctx, key, false, func(ctx context.Context) (any, int64, error) {
		b, err := r.store.Get(ctx, key)
		if err != nil {
			return nil, 0, fileErr(e, r.id, err)
		}
		return decodeFile(key, b, true, nil)
	})
	if err != nil {
		return nil, err
	}
	f := v.(*cachedFile)
	h := f.header
	if h.RangeId != r.id || h.TenantId != r.tenant || h.Seq != e.Seq || h.PrevWatermark != e.PrevWatermark || h.Watermark != e.Watermark {
		return nil, fmt.Errorf("%s: header (range %d seq %d (%d, %d]) does not match log entry %d (%d, %d]",
			key, h.RangeId, h.Seq, h.PrevWatermark, h.Watermark, e.Seq, e.PrevWatermark, e.Watermark)
	}
	if uint64(len(f.rows)) != e.File.RowCount {
		return nil, fmt.Errorf("%s: %d rows, log entry %d says %d", key, len(f.rows), e.Seq, e.File.RowCount)
	}
	i := sort.Search(len(f.rows), func(i int) bool { return f.rows[i].CommitTs >= r.from })
	return f.rows[i:len(f.rows):len(f.rows)], nil
}

// decodeFile decodes every row of a data file. The rows of compressed
// blocks point into the blocks, each decompressed into memory of its own.
// When own is set, b is the file's alone and never changes: the rows of its
// uncompressed blocks point into it; otherwise they are copied, into a few
// shared arenas.
func decodeFile(key string, b []byte, own bool, alloc func(n int) []Row) (any, int64, error) {
	var arenas int64
	// Compressed blocks are decompressed into memory the rows keep (and
	// point into), not into one buffer their keys and values are then
	// copied out of.
	f, err := openDataFile(key, b, func(n int) []byte {
		arenas += int64(n)
		return make([]byte, 0, n)
	})
	if err != nil {
		return nil, 0, err
	}
	// The trailer counts the records (the header is one); a record takes at
	// least 4 bytes, which bounds what a corrupt trailer can reserve.
	n := min(f.r.Trailer().RecordCount, uint64(len(b)/4)+1)
	var (
		rows    []Row
		arena   []byte
		inPlace bool
	)
	if alloc != nil {
		rows = alloc(int(max(n, 1) - 1))
	} else {
		rows = make([]Row, 0, max(n, 1)-1)
	}
	keep := func(v []byte) []byte {
		if v == nil {
			return nil
		}
		switch {
		case !f.r.InPlace(): // in a block of its own (above)
			return v[:len(v):len(v)]
		case own:
			inPlace = true
			return v[:len(v):len(v)]
		}
		if len(arena)+len(v) > cap(arena) {
			arena = make([]byte, 0, max(2*len(b), len(v), 4096))
			arenas += int64(cap(arena))
		}
		arena = append(arena, v...)
		return arena[len(arena)-len(v) : len(arena) : len(arena)]
	}
	for {
		row, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, Row{CommitTs: row.CommitTs, StartTs: row.StartTs, Op: row.Op,
			Key: keep(row.Key), Value: keep(row.Value), OldValue: keep(row.OldValue)})
	}
	rows = rows[:len(rows):len(rows)]
	if inPlace {
		arenas += int64(len(b))
	}
	size := arenas + int64(cap(rows))*rowOverhead + int64(proto.Size(f.Header)) + entryOverhead
	return &cachedFile{header: f.Header, rows: rows, bytes: size, inPlace: inPlace}, size, nil
}

// loadManifest is LoadManifest, decoding each manifest version once when
// there is a cache (versions are immutable; the listing is not cached).
func loadManifest(ctx context.Context, store objstore.Store, tenant uint64, cache *Cache) (*formatv1.Manifest, error) {
	if cache == nil {
		return LoadManifest(ctx, store, tenant)
	}
	all, err := objstore.ListAll(ctx, store, layout.ManifestPrefix(tenant), "")
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("tenant %d: %w", tenant, ErrNoManifest)
	}
	key := all[len(all)-1].Key
	v, err := cache.get(ctx, key, false, func(ctx context.Context) (any, int64, error) {
		b, err := store.Get(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		m, err := DecodeManifest(key, b)
		if err != nil {
			return nil, 0, err
		}
		if m.TenantId != tenant || layout.ManifestKey(tenant, m.Version) != key {
			return nil, 0, fmt.Errorf("%s: manifest says tenant %d version %d", key, m.TenantId, m.Version)
		}
		return m, int64(proto.Size(m)) + entryOverhead, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*formatv1.Manifest), nil
}
