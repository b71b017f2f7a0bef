package sortbuf

// Store hands out the Buffer of each range. *MemoryFirst (memory, spilling
// to Pebble; NewMemory without spill) and *Engine (Pebble) implement it;
// all pass the same contract suite (package sortbuftest).
type Store interface {
	// Buffer returns the buffer of the range with this uid, the same one on
	// every call until it is dropped.
	Buffer(uid uint64) Buffer
}

// Buffer is the sorter buffer of one range: its committed rows in (commit_ts,
// start_ts, key) order, plus the spill space of its transaction matcher.
//
// A Buffer is used by one goroutine at a time (its range's), except Stats,
// which may be read from anywhere.
type Buffer interface {
	UID() uint64
	// NewBatch starts a write batch; many rows per batch is the fast path.
	NewBatch() Batch
	// Add writes rows in one batch. A row with the (commit_ts, start_ts,
	// key) of one already buffered, or added before it, replaces it.
	Add(rows ...Row) error
	// Scan calls fn for every row with commit_ts <= upTo in (commit_ts,
	// start_ts, key) order, from a consistent view taken when Scan starts.
	// The row's slices are only valid during the call: copy (Row.Clone) what
	// you keep. An error from fn stops the scan and is returned.
	Scan(upTo uint64, fn func(Row) error) error
	// Has reports whether the row (commitTs, startTs, key) is buffered, for
	// duplicate detection. Rows at or below the GC floor are gone.
	Has(commitTs, startTs uint64, key []byte) (bool, error)
	// DeleteUpTo removes every row with commit_ts <= ts and raises the
	// buffer's GC floor to ts: rows added later at or below the floor are
	// ignored (they were already flushed, so they can only be duplicates).
	DeleteUpTo(ts uint64) error
	// Floor is the highest ts passed to DeleteUpTo (0 at first).
	Floor() uint64
	// Drop removes everything of the range, rows and spill alike, and
	// forgets the buffer (the range moved away). Using it afterwards is an
	// error; Store.Buffer(uid) returns a fresh, empty one.
	Drop() error
	// Stats is an approximate account of what the buffer holds.
	Stats() BufferStats
	// Spill is the range's spill space for its transaction matcher.
	Spill() SpillStore
}

// Sizer is a Buffer that tells, without reading the rows, how many rows
// with commit_ts <= upTo Scan would yield and their Row.Size bytes; ok is
// false when it cannot tell cheaply (rows on disk). A flush sizes its
// output with it.
type Sizer interface {
	SizeUpTo(upTo uint64) (rows int, bytes int64, ok bool)
}

// Batch collects rows of one buffer for a single write. Rows are copied in
// Add, so the caller may reuse its slices at once. A row replaces one with
// the same (commit_ts, start_ts, key), the last added winning, within the
// batch as well as in the buffer. Commit writes them and
// empties the batch for reuse; Close releases it. A batch is not safe for
// concurrent use.
type Batch interface {
	Add(r Row) error
	// Len is the number of rows added since the last Commit.
	Len() int
	// Bytes is the payload (Row.Size) added since the last Commit.
	Bytes() int
	Commit() error
	Close()
}

// SpillStore keeps the prewrites a transaction matcher pushed out of memory,
// by (start_ts, key). Values are opaque to it. Get returns a copy; ForEach's
// slices are only valid during the call.
type SpillStore interface {
	Put(startTs uint64, key, value []byte) error
	Get(startTs uint64, key []byte) ([]byte, bool, error)
	Delete(startTs uint64, key []byte) error
	// DeleteTxn removes every key of the transaction at once.
	DeleteTxn(startTs uint64) error
	// ForEach visits everything in (start_ts, key) order, for snapshots.
	ForEach(fn func(startTs uint64, key, value []byte) error) error
}

// BufferStats is an approximate account of one buffer. Re-adding a row
// counts twice, and a DeleteUpTo inside a commit-ts bucket is only
// subtracted once the floor passes the bucket's largest commit_ts, so the
// figures may run slightly high; they never drift once a range is empty.
type BufferStats struct {
	Rows  int64 // buffered committed rows
	Bytes int64 // their Row.Size payload
	// Late counts rows ignored because their commit_ts was at or below the
	// GC floor when added: duplicates of flushed rows.
	Late  int64
	Floor uint64
}
