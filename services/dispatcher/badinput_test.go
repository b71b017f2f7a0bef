package dispatcher

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Bad input (docs/bad-input.md): every case runs store 1 with a damaged
// file at seq badSeq next to a healthy store 2, and checks the defined
// action against the test's own routing of the good files.

const badSeq = 5

// srcFile returns the key and bytes of a simulated file.
func (v *env) srcFile(storeID, seq uint64) (string, []byte) {
	v.t.Helper()
	for _, k := range storeFiles(v.t, v.src, storeID) {
		n, err := layout.ParseStoreFileKey(k)
		require.NoError(v.t, err)
		if n.Seq == seq {
			b, err := v.src.Get(context.Background(), k)
			require.NoError(v.t, err)
			return k, b
		}
	}
	v.t.Fatalf("store %d has no file %d", storeID, seq)
	return "", nil
}

func (v *env) putBuffer(key string, b []byte) {
	v.t.Helper()
	require.NoError(v.t, v.buffer.Put(context.Background(), key, b))
}

func (v *env) deleteBuffer(key string) {
	v.t.Helper()
	require.NoError(v.t, v.buffer.Delete(context.Background(), key))
}

// rewrite decodes a store file, lets edit change its header and records,
// and encodes it again (valid framing).
func rewrite(t *testing.T, key string, data []byte, edit func(h *formatv1.StoreFileHeader, recs []*formatv1.StoreRecord) []*formatv1.StoreRecord) []byte {
	t.Helper()
	cr, err := container.Open(key, data, container.KindStoreChange)
	require.NoError(t, err)
	h := &formatv1.StoreFileHeader{}
	require.NoError(t, cr.NextMessage(h))
	var recs []*formatv1.StoreRecord
	for {
		rec := &formatv1.StoreRecord{}
		err := cr.NextMessage(rec)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		recs = append(recs, rec)
	}
	recs = edit(h, recs)
	w := container.NewWriter(container.KindStoreChange, container.Options{Codec: container.CodecZstd})
	require.NoError(t, w.AppendMessage(h))
	for _, r := range recs {
		require.NoError(t, w.AppendMessage(r))
	}
	out, err := w.Finish()
	require.NoError(t, err)
	return out
}

func blockedLabels(storeID uint64, reason string) map[string]string {
	l := streamLabels(storeID)
	l["reason"] = reason
	return l
}

// quarantine is one bad-file case: damage puts the bad input into the
// buffer (after the good files were fed) and returns how to repair it.
func quarantine(t *testing.T, reason string, damage func(v *env) (fix func())) {
	v := newEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	last := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs := seqsOf(t, v, store)
		last[store] = seqs[len(seqs)-1]
		require.Greater(t, last[store], uint64(badSeq+2))
		v.feed(store, 1, last[store])
	}
	fix := damage(v)
	for store := uint64(1); store <= testStores; store++ {
		v.assign(store, "d1", 1)
	}
	_, reg := v.dispatcher("d1", func(c *Config) { c.BlockedAfter = 300 * time.Millisecond })

	// The stream stops at the bad file, with the alert; the other runs on.
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_stream_blocked", blockedLabels(1, reason)) == 1
	},
		"store 1 blocked with reason %s", reason)
	eventually(t, func() bool { return v.checkpointSeq(1) == badSeq-1 }, "store 1 checkpoint reaches the file before the bad one")
	eventually(t, func() bool { return v.checkpointSeq(2) == last[2] }, "store 2 keeps going")
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_blocked", streamLabels(2)))
	time.Sleep(500 * time.Millisecond) // several retries
	require.Equal(t, uint64(badSeq-1), v.checkpointSeq(1), "the checkpoint never passes the bad file")
	require.Equal(t, float64(1), metric(t, reg, "tistream_dispatcher_stream_blocked", streamLabels(1)), "one reason at a time")
	if reason != blockGap {
		require.Contains(t, v.bufferSeqs(1), uint64(badSeq), "the bad file is kept")
	}
	for _, f := range v.sorters {
		for _, b := range f.received() {
			if b.store == 1 {
				require.Less(t, b.seq, uint64(badSeq), "nothing at or after the bad file is delivered")
			}
		}
	}
	if reason != blockGap {
		require.GreaterOrEqual(t, metric(t, reg, "tistream_dispatcher_decode_errors_total", streamLabels(1)), float64(2), "retried")
	}

	// Repaired: the stream resumes by itself and delivers everything once,
	// in order, exactly as the test's own Router routes the good files.
	fix()
	eventually(t, func() bool { return v.checkpointSeq(1) == last[1] }, "store 1 resumes after the repair")
	eventually(t, func() bool { return metric(t, reg, "tistream_dispatcher_stream_blocked", streamLabels(1)) == 0 }, "alert cleared")
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		for store := uint64(1); store <= testStores; store++ {
			require.Equal(t, fedSeqs(exp[store], rangeID, 0, last[store]), f.appliedOrder(rangeID, store), "store %d range %d", store, rangeID)
		}
		checkContent(t, f, rangeID, exp)
	}
}

// restoreGood puts the good file back under its key (replacing the bad
// bytes), removing extra keys.
func restoreGood(v *env, extra ...string) func() {
	key, good := v.srcFile(1, badSeq)
	return func() {
		for _, k := range extra {
			v.deleteBuffer(k)
		}
		v.putBuffer(key, good)
	}
}

// (1) A corrupted file (a flipped byte: block checksum) blocks the stream.
func TestBadInputCorruptFile(t *testing.T) {
	quarantine(t, blockCorrupt, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		bad := append([]byte(nil), good...)
		bad[len(bad)/2] ^= 0xff
		v.putBuffer(key, bad)
		return restoreGood(v)
	})
}

// (1b) Garbage that is not a store file at all.
func TestBadInputGarbageFile(t *testing.T) {
	quarantine(t, blockCorrupt, func(v *env) func() {
		key, _ := v.srcFile(1, badSeq)
		v.putBuffer(key, []byte("<html>503 Service Unavailable</html> and then some more bytes to be long enough"))
		return restoreGood(v)
	})
}

// (2) A truncated file (an interrupted upload).
func TestBadInputTruncatedFile(t *testing.T) {
	quarantine(t, blockTruncated, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		v.putBuffer(key, good[:len(good)*2/3])
		return restoreGood(v)
	})
}

// (4) Reordered files: file 6's content under seq 5's key (and the
// reverse).
func TestBadInputReorderedFiles(t *testing.T) {
	quarantine(t, blockSeq, func(v *env) func() {
		k5, good5 := v.srcFile(1, badSeq)
		k6, good6 := v.srcFile(1, badSeq+1)
		v.putBuffer(k5, good6)
		v.putBuffer(k6, good5)
		return func() {
			v.putBuffer(k6, good6)
			v.putBuffer(k5, good5)
		}
	})
}

// (5) A file of another store (and, below, of another tenant) under this
// store's key.
func TestBadInputWrongStoreFile(t *testing.T) {
	quarantine(t, blockWrongStream, func(v *env) func() {
		key, _ := v.srcFile(1, badSeq)
		_, other := v.srcFile(2, badSeq)
		v.putBuffer(key, other)
		return restoreGood(v)
	})
}

func TestBadInputWrongTenantFile(t *testing.T) {
	quarantine(t, blockWrongStream, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		v.putBuffer(key, rewrite(t, key, good, func(h *formatv1.StoreFileHeader, recs []*formatv1.StoreRecord) []*formatv1.StoreRecord {
			h.TenantId = testTenant + 1
			return recs
		}))
		return restoreGood(v)
	})
}

// (3) Two different files under one seq (two producers): blocked.
func TestBadInputConflictingDuplicate(t *testing.T) {
	quarantine(t, blockDuplicate, func(v *env) func() {
		_, good6 := v.srcFile(1, badSeq+1)
		n, err := layout.ParseStoreFileKey(func() string { k, _ := v.srcFile(1, badSeq); return k }())
		require.NoError(t, err)
		extra := layout.StoreFileKey(n.Cluster, n.Tenant, n.Store, badSeq, n.MaxTs-1)
		v.putBuffer(extra, good6)
		return func() { v.deleteBuffer(extra) }
	})
}

// (6) A sequence gap: file 5 missing while 6 and later exist. The stream
// waits (never skips), alerts after BlockedAfter, and resumes when 5 comes.
func TestBadInputSequenceGap(t *testing.T) {
	quarantine(t, blockGap, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		v.deleteBuffer(key)
		return func() { v.putBuffer(key, good) }
	})
}

// (7) A region incarnation going backwards: file 5's header (its full list
// or its delta) names an older term of a region the stream already led.
func TestBadInputEpochRegressed(t *testing.T) {
	quarantine(t, blockEpoch, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		v.putBuffer(key, rewrite(t, key, good, func(h *formatv1.StoreFileHeader, recs []*formatv1.StoreRecord) []*formatv1.StoreRecord {
			// A full list or a delta's additions (format version 2).
			for _, ri := range append(h.LeaderRegions, h.LeaderAdded...) {
				reg := &metapb.Region{}
				require.NoError(t, reg.Unmarshal(ri.Region))
				switch {
				case ri.Term > 1:
					ri.Term--
				case reg.RegionEpoch.Version > 1:
					reg.RegionEpoch.Version--
					b, err := reg.Marshal()
					require.NoError(t, err)
					ri.Region = b
				default:
					continue
				}
				return recs
			}
			t.Fatal("no incarnation to age in the header")
			return recs
		}))
		return restoreGood(v)
	})
}

// (8) A resolved ts going backwards: file 5 repeats a resolved ts record
// with a lower ts.
func TestBadInputResolvedRegressed(t *testing.T) {
	quarantine(t, blockResolved, func(v *env) func() {
		key, good := v.srcFile(1, badSeq)
		v.putBuffer(key, rewrite(t, key, good, func(h *formatv1.StoreFileHeader, recs []*formatv1.StoreRecord) []*formatv1.StoreRecord {
			for i := len(recs) - 1; i >= 0; i-- {
				x, ok := recs[i].Record.(*formatv1.StoreRecord_ChangeDataEvent)
				if !ok {
					continue
				}
				ev := &cdcpb.ChangeDataEvent{}
				require.NoError(t, ev.Unmarshal(x.ChangeDataEvent))
				if ev.ResolvedTs == nil || ev.ResolvedTs.Ts < 2 || len(ev.ResolvedTs.Regions) == 0 {
					continue
				}
				ev.ResolvedTs.Ts--
				b, err := ev.Marshal()
				require.NoError(t, err)
				back := &formatv1.StoreRecord{Record: &formatv1.StoreRecord_ChangeDataEvent{ChangeDataEvent: b}}
				return append(recs[:i+1:i+1], append([]*formatv1.StoreRecord{back}, recs[i+1:]...)...)
			}
			t.Fatal("no resolved ts record")
			return recs
		}))
		return restoreGood(v)
	})
}

// (3) The same bytes under a second key of the same seq: skipped as a
// proven duplicate (counted); everything is delivered exactly once.
func TestBadInputIdenticalDuplicateSkipped(t *testing.T) {
	v := newEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	last := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs := seqsOf(t, v, store)
		last[store] = seqs[len(seqs)-1]
		v.feed(store, 1, last[store])
		v.assign(store, "d1", 1)
	}
	key, good := v.srcFile(1, badSeq)
	n, err := layout.ParseStoreFileKey(key)
	require.NoError(t, err)
	// Sorts before the real one: the listing returns the copy first.
	v.putBuffer(layout.StoreFileKey(n.Cluster, n.Tenant, n.Store, badSeq, n.MaxTs-1), good)
	_, reg := v.dispatcher("d1", nil)
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool { return v.checkpointSeq(store) == last[store] }, "store %d done", store)
		eventually(t, func() bool { return slices.Equal(v.bufferSeqs(store), v.kept(store, last[store])) },
			"store %d buffer emptied (the copy too) but for its last full leader list", store)
	}
	require.GreaterOrEqual(t, metric(t, reg, "tistream_dispatcher_duplicate_files_skipped_total", streamLabels(1)), float64(1))
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_blocked", nil))
	require.Zero(t, metric(t, reg, "tistream_dispatcher_decode_errors_total", nil))
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		for store := uint64(1); store <= testStores; store++ {
			want := fedSeqs(exp[store], rangeID, 0, last[store])
			require.Equal(t, want, seqsOfBatches(accepted(f, rangeID, store)), "each file sent exactly once")
			require.Equal(t, want, f.appliedOrder(rangeID, store))
		}
		checkContent(t, f, rangeID, exp)
	}
}

// (3) A file at or below the checkpoint uploaded again is never read: the
// stream reads only above its checkpoint.
func TestBadInputReuploadBehindCheckpointIgnored(t *testing.T) {
	v := newEnv(t)
	last := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		seqs := seqsOf(t, v, store)
		last[store] = seqs[len(seqs)-1]
		v.feed(store, 1, last[store])
		v.assign(store, "d1", 1)
	}
	_, reg := v.dispatcher("d1", nil)
	eventually(t, func() bool { return v.checkpointSeq(1) == last[1] && slices.Equal(v.bufferSeqs(1), v.kept(1, last[1])) }, "store 1 done")
	before := len(v.sorters[0].received()) + len(v.sorters[1].received())
	v.feed(1, 2, 2)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, before, len(v.sorters[0].received())+len(v.sorters[1].received()), "nothing resent")
	require.Equal(t, last[1], v.checkpointSeq(1))
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_blocked", nil))
}

// (9, dispatcher side) A sorter that keeps refusing the same file (as a
// sorter does for a batch with a commit below its published watermark)
// blocks the stream with reason refused after BlockedAfter, never passing
// the file; once the sorter accepts it, the stream resumes.
func TestBadInputRepeatedRefusalBlocks(t *testing.T) {
	v := newEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	last := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs := seqsOf(t, v, store)
		last[store] = seqs[len(seqs)-1]
		v.feed(store, 1, last[store])
		v.assign(store, "d1", 1)
	}
	// Range 1 refuses every batch for a while.
	v.sorters[0].set(func(f *fakeSorter) { f.refuseN[1] = 1 << 30 })
	_, reg := v.dispatcher("d1", func(c *Config) { c.BlockedAfter = 300 * time.Millisecond })
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_stream_blocked", blockedLabels(1, blockRefused)) == 1
	}, "store 1 blocked: refused")
	require.Zero(t, v.checkpointSeq(1))
	v.sorters[0].set(func(f *fakeSorter) { f.refuseN[1] = 0 })
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool { return v.checkpointSeq(store) == last[store] }, "store %d done", store)
		eventually(t, func() bool { return metric(t, reg, "tistream_dispatcher_stream_blocked", streamLabels(store)) == 0 }, "cleared")
	}
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		for store := uint64(1); store <= testStores; store++ {
			require.Equal(t, fedSeqs(exp[store], rangeID, 0, last[store]), f.appliedOrder(rangeID, store))
		}
		checkContent(t, f, rangeID, exp)
	}
}
