package dispatcher

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
)

// Store files read by their notified key (notices.go, read.go): a
// notification names the file's seq and max_ts, so the stream GETs the key
// instead of listing the seq. The dispatchers here list the buffer only
// when a run starts or a file is missing, with no poll in between
// (PollInterval one hour): what they read after their first listing they
// read because of a notification. Every test checks what the sorters got
// against the test's own routing of the simulated files.

// noPoll makes a test dispatcher list the buffer only when it must.
func noPoll(c *Config) { c.PollInterval = time.Hour }

// notifiedEnv is a fleet whose buffer counts its reads and listings.
func notifiedEnv(t *testing.T) (*env, *countingStore) {
	v := newEnv(t)
	buf := countGets(v.buffer)
	v.buffer = buf
	return v, buf
}

// maxTsOf is the max_ts in the key of a simulated file.
func (v *env) maxTsOf(storeID, seq uint64) uint64 {
	v.t.Helper()
	key, _ := v.srcFile(storeID, seq)
	n, err := layout.ParseStoreFileKey(key)
	require.NoError(v.t, err)
	return n.MaxTs
}

// notify calls d's Notify as the meta-server's forwarder does.
func (v *env) notify(d *Service, storeID, seq, maxTs uint64) {
	v.t.Helper()
	_, err := (&grpcService{s: d}).Notify(context.Background(),
		&dispatcherv1.NotifyRequest{TenantId: testTenant, StoreId: storeID, Seq: seq, MaxTs: maxTs})
	require.NoError(v.t, err)
}

// listedOnce waits until a store's stream has made its first listing (of
// seq 1, in an empty buffer): from then on it reads when notified.
func listedOnce(t *testing.T, buf *countingStore, storeID uint64) {
	eventually(t, func() bool { return buf.listsOf(t, storeID)[1] >= 1 }, "store %d listed its first seq", storeID)
}

// requireOnlyFirstListed checks that a stream listed no seq but the first
// (in the empty buffer, before file 1 was there: file 1 was read by its
// key, readsHow says): every later file was read without a LIST.
func requireOnlyFirstListed(t *testing.T, buf *countingStore, storeID uint64) {
	t.Helper()
	for seq := range buf.listsOf(t, storeID) {
		require.Equal(t, uint64(1), seq, "store %d: seq %d listed", storeID, seq)
	}
}

func readsHow(t *testing.T, reg *prometheus.Registry, storeID uint64, how string) float64 {
	l := streamLabels(storeID)
	l["how"] = how
	return metric(t, reg, "tistream_dispatcher_store_file_reads_total", l)
}

// requireDelivered checks that each range got each file of a store that
// feeds it (accepted once, when once), applied in order, and that every
// batch the sorters got holds the events the test's own routing gives
// (exp: per store).
func requireDelivered(t *testing.T, v *env, exp map[uint64]map[uint64]map[uint64]string, storeID, last uint64, once bool) {
	t.Helper()
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		want := fedSeqs(exp[storeID], rangeID, 0, last)
		require.NotEmpty(t, want)
		if once {
			require.Equal(t, want, seqsOfBatches(accepted(f, rangeID, storeID)), "store %d range %d: each file sent once", storeID, rangeID)
		}
		require.Equal(t, want, f.appliedOrder(rangeID, storeID), "store %d range %d", storeID, rangeID)
		checkContent(t, f, rangeID, exp)
	}
}

// A notified stream (store 1: each file written, then notified) reads each
// file with one GET of its key and lists no seq after its first listing; a
// stream without notifications (store 2, whose files were all in the buffer
// at its start) lists each seq as before. Both deliver every file once, in
// order, as the test's own routing does; the GC empties the buffer.
func TestNotifiedStreamReadsByKey(t *testing.T) {
	v, buf := notifiedEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	seqs := map[uint64][]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs[store] = seqsOf(t, v, store)
		v.assign(store, "d1", 1)
	}
	v.feed(2, 1, slices.Max(seqs[2]))
	d, reg := v.dispatcher("d1", noPoll)
	listedOnce(t, buf, 1)
	for _, seq := range seqs[1] {
		v.feed(1, seq, seq)
		v.notify(d, 1, seq, v.maxTsOf(1, seq))
	}
	for store := uint64(1); store <= testStores; store++ {
		last := slices.Max(seqs[store])
		eventually(t, func() bool { return v.checkpointSeq(store) == last }, "store %d checkpoint reaches %d", store, last)
		eventually(t, func() bool { return slices.Equal(v.bufferSeqs(store), v.kept(store, last)) },
			"store %d buffer emptied but for its last full leader list", store)
		requireDelivered(t, v, exp, store, last, true)
	}
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", nil))

	n := float64(len(seqs[1]))
	require.Equal(t, n, readsHow(t, reg, 1, readNotified))
	require.Zero(t, readsHow(t, reg, 1, readListed)+readsHow(t, reg, 1, readFallback)+readsHow(t, reg, 1, readReplay))
	requireOnlyFirstListed(t, buf, 1)
	gets := buf.getsOf(t, 1)
	for _, seq := range seqs[1] {
		require.Equal(t, 1, gets[seq], "store 1 file %d: one GET", seq)
	}

	require.Equal(t, float64(len(seqs[2])), readsHow(t, reg, 2, readListed))
	require.Zero(t, readsHow(t, reg, 2, readNotified)+readsHow(t, reg, 2, readFallback))
	lists, gets := buf.listsOf(t, 2), buf.getsOf(t, 2)
	for _, seq := range seqs[2] {
		require.GreaterOrEqual(t, lists[seq], 1, "store 2 file %d found by a listing", seq)
		require.Equal(t, 1, gets[seq], "store 2 file %d: one GET", seq)
	}
	for store := uint64(1); store <= testStores; store++ {
		require.Equal(t, metric(t, reg, "tistream_dispatcher_files_read_total", streamLabels(store)),
			metric(t, reg, "tistream_dispatcher_store_file_reads_total", streamLabels(store)), "every file routed is counted once by how")
	}
}

// A notified key that is not in the buffer — a notification naming a
// max_ts no file has (files 3 and 7), or one that came before its file
// (file 5) — falls back to listing the seq: nothing is lost or skipped, and
// the wrong key is tried once.
func TestNotifiedMissingKeyFallsBack(t *testing.T) {
	v, buf := notifiedEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	require.Greater(t, last, uint64(8))
	v.assign(store, "d1", 1)
	d, reg := v.dispatcher("d1", noPoll)
	listedOnce(t, buf, store)
	wrong := map[uint64]bool{3: true, 7: true}
	for _, seq := range seqs {
		maxTs := v.maxTsOf(store, seq)
		switch {
		case wrong[seq]:
			v.feed(store, seq, seq)
			v.notify(d, store, seq, maxTs+1)
		case seq == 5:
			// Notified before it is written: the GET misses, the listing
			// finds nothing, the stream waits; the next notification makes
			// it list again and find the file.
			v.notify(d, store, seq, maxTs)
			eventually(t, func() bool { return buf.listsOf(t, store)[seq] >= 1 }, "file %d looked for", seq)
			v.feed(store, seq, seq)
		default:
			v.feed(store, seq, seq)
			v.notify(d, store, seq, maxTs)
		}
	}
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	requireDelivered(t, v, map[uint64]map[uint64]map[uint64]string{store: exp}, store, last, true)
	require.Equal(t, float64(len(wrong)), readsHow(t, reg, store, readFallback))
	require.Equal(t, float64(1), readsHow(t, reg, store, readListed), "file 5, listed after its GET missed")
	require.Equal(t, float64(len(seqs)-len(wrong)-1), readsHow(t, reg, store, readNotified))
	gets := buf.getsOf(t, store)
	for _, seq := range seqs {
		key, _ := v.srcFile(store, seq)
		switch {
		case wrong[seq]: // the missing key, then the file
			require.Equal(t, 1, buf.getsOfKey(layout.StoreFileKey(testCluster, testTenant, store, seq, v.maxTsOf(store, seq)+1)))
			require.Equal(t, 1, buf.getsOfKey(key), "file %d", seq)
			require.Equal(t, 2, gets[seq], "file %d", seq)
		case seq == 5: // its key before it was written, then after
			require.Equal(t, 2, buf.getsOfKey(key), "file %d", seq)
			require.Equal(t, 2, gets[seq], "file %d", seq)
		default:
			require.Equal(t, 1, gets[seq], "file %d: one GET", seq)
		}
	}
	lists := buf.listsOf(t, store)
	for seq := range lists {
		require.True(t, seq == 1 || wrong[seq] || seq == 5, "seq %d listed", seq)
	}
	require.GreaterOrEqual(t, lists[5], 2, "file 5: listed when missing, and when woken")
}

// conflictingCopy puts a second object under file badSeq of store 1 (its
// max_ts minus one) holding other bytes (file badSeq+1's) and returns its
// key and max_ts.
func (v *env) conflictingCopy() (string, uint64) {
	v.t.Helper()
	_, other := v.srcFile(1, badSeq+1)
	maxTs := v.maxTsOf(1, badSeq) - 1
	key := layout.StoreFileKey(testCluster, testTenant, 1, badSeq, maxTs)
	v.putBuffer(key, other)
	return key, maxTs
}

// Two different objects under one seq (two producers) still stop a
// notified stream at that seq (duplicate_conflict), whether the second
// notification comes before the stream reads the seq (it lists the seq
// instead of reading a key) or after (it lists the seq again at once and
// ends the run; the next run stops at the seq). Removing the wrong object
// lets the stream resume with nothing lost.
func TestNotifiedConflictingDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		afterRead   bool
		wantRecheck bool
	}{
		{name: "notified before the read"},
		{name: "notified after the read", afterRead: true, wantRecheck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, buf := notifiedEnv(t)
			const store = 1
			exp := expectedBatches(t, v.src, store)
			seqs := seqsOf(t, v, store)
			last := seqs[len(seqs)-1]
			require.Greater(t, last, uint64(testMaxInFlight+1))
			if tc.afterRead {
				// No acknowledgement: the checkpoint stays below the file
				// while the stream reads it and the ones after it.
				for _, f := range v.sorters {
					f.set(func(f *fakeSorter) { f.acksOn = false })
				}
			}
			v.assign(store, "d1", 1)
			d, reg := v.dispatcher("d1", func(c *Config) { noPoll(c); c.BlockedAfter = 300 * time.Millisecond })
			listedOnce(t, buf, store)
			v.feed(store, 1, last)
			copyKey := ""
			if !tc.afterRead {
				var copyTs uint64
				copyKey, copyTs = v.conflictingCopy()
				st := d.lookup(testTenant, store)
				require.NotNil(t, st)
				// Both notifications are in before the stream looks at
				// the seq (recorded without waking it).
				st.notes.note(badSeq, v.maxTsOf(store, badSeq), true)
				st.notes.note(badSeq, copyTs, true)
			}
			for _, seq := range seqs {
				v.notify(d, store, seq, v.maxTsOf(store, seq))
			}
			if tc.afterRead {
				eventually(t, func() bool { return readsHow(t, reg, store, readNotified) >= badSeq }, "file %d read by its key", badSeq)
				var copyTs uint64
				copyKey, copyTs = v.conflictingCopy()
				v.notify(d, store, badSeq, copyTs)
			}
			eventually(t, func() bool {
				return metric(t, reg, "tistream_dispatcher_stream_blocked", blockedLabels(store, blockDuplicate)) == 1
			}, "stream blocked: duplicate_conflict")
			if tc.afterRead {
				for _, f := range v.sorters {
					f.set(func(f *fakeSorter) { f.acksOn = true })
				}
			}
			eventually(t, func() bool { return v.checkpointSeq(store) == badSeq-1 }, "checkpoint reaches the file before the duplicate")
			time.Sleep(500 * time.Millisecond) // several retries
			require.Equal(t, uint64(badSeq-1), v.checkpointSeq(store), "the checkpoint never passes the duplicate")
			require.Equal(t, float64(1), metric(t, reg, "tistream_dispatcher_stream_blocked", blockedLabels(store, blockDuplicate)))
			require.GreaterOrEqual(t, metric(t, reg, "tistream_dispatcher_decode_errors_total", streamLabels(store)), float64(2), "retried")
			if tc.wantRecheck {
				require.Positive(t, metric(t, reg, "tistream_dispatcher_notified_rechecks_total", streamLabels(store)))
			} else {
				require.Zero(t, metric(t, reg, "tistream_dispatcher_notified_rechecks_total", streamLabels(store)))
				// As with a listing: nothing at or after the seq was sent.
				for _, f := range v.sorters {
					for _, b := range f.received() {
						require.Less(t, b.seq, uint64(badSeq), "nothing at or after the duplicate delivered")
					}
				}
			}
			// What was read of the seq before the second object appeared
			// is the right file (checkContent): the operator removes the
			// other one.
			v.deleteBuffer(copyKey)
			eventually(t, func() bool { return v.checkpointSeq(store) == last }, "the stream resumes after the repair")
			eventually(t, func() bool { return metric(t, reg, "tistream_dispatcher_stream_blocked", streamLabels(store)) == 0 }, "alert cleared")
			requireDelivered(t, v, map[uint64]map[uint64]map[uint64]string{store: exp}, store, last, false)
		})
	}
}

// A notified stream restarted by a range move (its checkpoint held below
// the moved range's files) routes the files past its checkpoint again from
// the replay cache (rangeMove checks that every file is read from the
// buffer once and that the new owner gets every file from the one after the
// checkpoint, in order); every file was read by its key, and no seq is
// listed after the first.
func TestNotifiedStreamReplaysAfterRangeMove(t *testing.T) {
	buf, reg, seqs := rangeMove(t, replayAll, true)
	const store = 1
	require.Positive(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", map[string]string{"reason": reasonRouting}))
	requireOnlyFirstListed(t, buf, store)
	require.Equal(t, float64(len(seqs)), readsHow(t, reg, store, readNotified))
	require.Positive(t, readsHow(t, reg, store, readReplay))
	require.Equal(t, readsHow(t, reg, store, readReplay), metric(t, reg, "tistream_dispatcher_replay_cache_files_total", streamLabels(store)))
}

// notices on their own: what a notification records, when a seq must be
// listed first, when a read file must be listed again, the checkpoint
// floor and the bound.
func TestNotices(t *testing.T) {
	n := newNotices()
	key := func(seq uint64) uint64 {
		ts, ok := n.key(seq)
		if !ok {
			return 0
		}
		return ts
	}
	wake, conflict := n.note(3, 0, true) // max_ts unknown: the seq alone
	require.True(t, wake)
	require.False(t, conflict)
	require.True(t, n.heard(3))
	require.False(t, n.heard(4))
	require.False(t, n.live(3), "a bare wake")
	require.Zero(t, key(3))

	wake, _ = n.note(1, 10, true)
	require.False(t, wake, "not newer than seq 3")
	require.Equal(t, uint64(10), key(1))
	require.True(t, n.live(1))
	require.False(t, n.live(2))
	_, conflict = n.note(1, 10, true)
	require.False(t, conflict, "the same file again")

	n.note(2, 20, true)
	wake, conflict = n.note(2, 21, true)
	require.True(t, conflict)
	require.False(t, wake, "not read yet: listed when read, no recheck")
	require.Zero(t, key(2), "two names for seq 2: list it")
	n.readAs(2, 20, true)
	require.Equal(t, uint64(20), key(2), "the listing checked it")
	require.Empty(t, n.rechecks())

	n.readAs(1, 10, false)
	wake, conflict = n.note(1, 11, true)
	require.True(t, wake)
	require.True(t, conflict)
	require.Equal(t, []uint64{1}, n.rechecks())
	require.Zero(t, key(1))
	n.rechecked(1, true)
	require.Empty(t, n.rechecks())
	require.Equal(t, uint64(10), key(1), "listed again, nothing else there: the key read")
	n.note(1, 12, true)
	n.rechecked(1, false)
	require.Zero(t, key(1), "a stop keeps the seq listed first")

	n.mustList(4)
	require.Zero(t, key(4))
	n.readAs(4, 40, true)
	require.Equal(t, uint64(40), key(4))

	n.trim(4)
	for seq := uint64(1); seq <= 4; seq++ {
		require.Zero(t, key(seq))
	}
	wake, conflict = n.note(2, 99, true)
	require.False(t, wake)
	require.False(t, conflict, "at or below the checkpoint: ignored")
	n.mustList(3)
	n.readAs(3, 30, false)
	require.Empty(t, n.files)

	// At most noticeLimit notified files ahead of the reads.
	for seq := uint64(5); seq < 5+noticeLimit+10; seq++ {
		n.note(seq, seq*10, true)
	}
	require.Len(t, n.files, noticeLimit)
	require.Zero(t, key(5+noticeLimit), "beyond the bound: listed")
	require.True(t, n.heard(5+noticeLimit))
	n.readAs(5, 50, false) // read: no longer ahead, room for one more
	n.note(5+noticeLimit, 7, true)
	require.Equal(t, uint64(7), key(5+noticeLimit))
	n.note(6+noticeLimit, 7, true)
	require.Zero(t, key(6+noticeLimit))
	n.trim(7) // the checkpoint passed 6 and 7, unread: room for two more
	n.note(6+noticeLimit, 8, true)
	n.note(7+noticeLimit, 9, true)
	n.note(8+noticeLimit, 9, true)
	require.Equal(t, []uint64{8, 9, 0}, []uint64{key(6 + noticeLimit), key(7 + noticeLimit), key(8 + noticeLimit)})

	// The stream task's latest file is read by its key, but is not live.
	n = newNotices()
	n.note(9, 90, false)
	require.Equal(t, uint64(90), key(9))
	require.False(t, n.live(9))
	n.note(9, 90, true)
	require.True(t, n.live(9))
}
