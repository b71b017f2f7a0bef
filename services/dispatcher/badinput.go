package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/route"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Reasons a stream is blocked (the reason label of
// tistream_dispatcher_stream_blocked). docs/bad-input.md lists them with the
// operator's way out.
const (
	blockCorrupt     = "corrupt"            // framing, checksum or decoding failed
	blockTruncated   = "truncated"          // the file ends early
	blockSeq         = "seq_mismatch"       // header seq differs from the key's or the expected seq
	blockWrongStream = "wrong_stream"       // header cluster/tenant/store/max_ts differ from the key
	blockDuplicate   = "duplicate_conflict" // two different files under one seq
	blockEpoch       = "epoch_regressed"    // a region incarnation older than one already led
	blockResolved    = "resolved_regressed" // a resolved ts below one already given
	blockGap         = "gap"                // file N missing while a later file exists
	blockRefused     = "refused"            // a sorter keeps refusing the same file
)

// badFileError is a store file the stream refuses to pass: the stream stops
// at it (quarantine) until it is replaced.
type badFileError struct {
	reason string
	key    string
	seq    uint64
	err    error
}

func (e *badFileError) Error() string {
	return fmt.Sprintf("store file %s (seq %d): %s: %v", e.key, e.seq, e.reason, e.err)
}

func (e *badFileError) Unwrap() error { return e.err }

// errSeqMismatch marks a header seq that is not the one expected.
var errSeqMismatch = errors.New("seq mismatch")

// classify turns a decode, route or name-check error of file seq into a
// badFileError with its reason.
func classify(key string, seq uint64, err error) *badFileError {
	reason := blockCorrupt
	var ce *container.CorruptError
	switch {
	case errors.Is(err, route.ErrEpochRegressed):
		reason = blockEpoch
	case errors.Is(err, route.ErrResolvedRegressed):
		reason = blockResolved
	case errors.Is(err, errSeqMismatch):
		reason = blockSeq
	case errors.Is(err, storefile.ErrNameMismatch):
		reason = blockWrongStream
	case errors.As(err, &ce) && (strings.Contains(ce.Reason, "truncated") || strings.Contains(ce.Reason, "shorter than") ||
		strings.Contains(ce.Reason, "past the end")):
		reason = blockTruncated
	}
	return &badFileError{reason: reason, key: key, seq: seq, err: err}
}

// checkName checks a file's key against its header and the seq expected.
func checkName(key string, h *formatv1.StoreFileHeader, want uint64) error {
	n, err := layout.ParseStoreFileKey(key)
	if err != nil {
		return err
	}
	if n.Seq != want || h.Seq != want {
		return fmt.Errorf("%s: header seq %d, key seq %d, want %d: %w", key, h.Seq, n.Seq, want, errSeqMismatch)
	}
	return storefile.CheckName(key, h, n)
}

// listing is what the buffer holds at the stream's next seq.
type listing struct {
	keys  []string // objects named with seq next (more than one: duplicates)
	later uint64   // when keys is empty: the seq of the first later file (a gap), or 0
}

// seqListPage is the page size of a listing for one seq (nextFile): the
// objects of the seq (more than one only for a duplicate) and the next
// file's first.
const seqListPage = 4

// nextFile lists the buffer from file seq: the objects of that seq, or the
// first later file when seq is missing (a gap).
func (st *stream) nextFile(ctx context.Context, seq uint64) (listing, error) {
	prefix := layout.StorePrefix(st.cluster, st.tenant, st.store)
	after := prefix + layout.Pad(seq-1) + "~" // after every key of file seq-1
	var out listing
	for {
		objs, more, err := st.buffer().List(ctx, prefix, after, seqListPage)
		if err != nil {
			return out, fmt.Errorf("list store file %d: %w", seq, err)
		}
		for _, o := range objs {
			after = o.Key
			n, err := layout.ParseStoreFileKey(o.Key)
			if err != nil {
				continue // not a store file
			}
			switch {
			case n.Seq == seq:
				out.keys = append(out.keys, o.Key)
			case n.Seq > seq:
				if len(out.keys) == 0 {
					out.later = n.Seq
				}
				return out, nil
			}
		}
		if !more || len(objs) == 0 {
			return out, nil
		}
	}
}

// pickDuplicate chooses among several objects named with one seq: when they
// hold identical bytes (a copy under a second name), the one whose key
// agrees with its header is read and the others are skipped and counted;
// otherwise the stream stops at the seq (two producers wrote one stream).
func (st *stream) pickDuplicate(ctx context.Context, seq uint64, keys []string) (string, []byte, error) {
	datas := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := st.buffer().Get(ctx, k)
		if err != nil {
			return "", nil, fmt.Errorf("read store file: %w", err)
		}
		datas[i] = b
	}
	for i := 1; i < len(keys); i++ {
		if !bytes.Equal(datas[0], datas[i]) {
			return "", nil, &badFileError{reason: blockDuplicate, key: keys[i], seq: seq,
				err: fmt.Errorf("%d objects carry seq %d with different contents (%s and %s)", len(keys), seq, keys[0], keys[i])}
		}
	}
	pick := -1
	for i, k := range keys {
		h, err := storefile.ParseHeader(k, datas[i])
		if err != nil {
			continue
		}
		n, err := layout.ParseStoreFileKey(k)
		if err == nil && storefile.CheckName(k, h, n) == nil {
			pick = i
			break
		}
	}
	if pick < 0 {
		return keys[0], datas[0], nil // every copy is bad: routing reports why
	}
	for i, k := range keys {
		if i != pick {
			st.sm.duplicates.Inc()
			st.log.Warn("skipping a duplicate store file: same bytes as the file of this seq", "seq", seq, "key", k, "kept", keys[pick])
		}
	}
	return keys[pick], datas[pick], nil
}

// blocked is why a stream stopped at a file.
type blocked struct {
	reason string
	seq    uint64
	since  time.Time
}

// block raises the blocked gauge for reason (clearing any other) and logs
// the error; it is called on every retry, so the log follows the backoff.
func (st *stream) block(reason string, seq uint64, key string, err error) {
	st.mu.Lock()
	prev := st.blocked
	if prev.reason != reason || prev.seq != seq {
		st.blocked = blocked{reason: reason, seq: seq, since: time.Now()}
	}
	since := st.blocked.since
	st.mu.Unlock()
	if prev.reason != "" && prev.reason != reason {
		st.sm.m.blocked.DeleteLabelValues(st.sm.labels[0], st.sm.labels[1], prev.reason)
	}
	st.sm.m.blocked.WithLabelValues(st.sm.labels[0], st.sm.labels[1], reason).Set(1)
	st.log.Error("stream blocked: it stops at this store file and retries; it never skips it",
		"reason", reason, "seq", seq, "key", key, "checkpoint", st.checkpointSeq(),
		"blocked_for", time.Since(since).Round(time.Millisecond), "err", err)
}

// unblock clears the blocked state if it was at or below seq (the stream
// read past it) or if all is true.
func (st *stream) unblock(seq uint64, all bool) {
	st.mu.Lock()
	b := st.blocked
	if b.reason == "" || (!all && (seq < b.seq || b.reason == blockRefused)) {
		st.mu.Unlock()
		return
	}
	st.blocked = blocked{}
	st.mu.Unlock()
	st.sm.m.blocked.DeleteLabelValues(st.sm.labels[0], st.sm.labels[1], b.reason)
	st.log.Info("stream unblocked", "reason", b.reason, "seq", b.seq, "blocked_for", time.Since(b.since).Round(time.Millisecond))
}

func (st *stream) blockedState() blocked {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.blocked
}

// gapState tracks a missing file while a later one exists.
type gapState struct {
	seq, later    uint64
	since, logged time.Time
}

// onMissing is called when file seq is not in the buffer; later is the seq
// of the first later file (0: none, the stream is caught up). A gap is
// waited on, never skipped; after BlockedAfter it blocks the stream (reason
// gap) and logs an error every RetryMax.
func (st *stream) onMissing(seq, later uint64) {
	if later == 0 {
		st.gap = gapState{}
		if b := st.blockedState(); b.reason == blockGap {
			st.unblock(0, true) // the later files went away: caught up
		}
		return
	}
	now := time.Now()
	if st.gap.seq != seq {
		st.gap = gapState{seq: seq, later: later, since: now}
		st.log.Warn("sequence gap: waiting for the missing store file (never skipped)", "seq", seq, "next_present", later)
		return
	}
	waited := now.Sub(st.gap.since)
	if waited < st.s.cfg.BlockedAfter || now.Sub(st.gap.logged) < st.s.cfg.RetryMax {
		return
	}
	st.gap.logged = now
	st.block(blockGap, seq, layout.StoreFileSeqPrefix(st.cluster, st.tenant, st.store, seq),
		fmt.Errorf("file %d is missing while file %d exists (waited %s)", seq, later, waited.Round(time.Millisecond)))
}

// onFound is called when file seq is in the buffer.
func (st *stream) onFound(seq uint64) {
	st.gap = gapState{}
}

// refuseState tracks a sorter refusing the same file run after run.
type refuseState struct {
	seq   uint64
	since time.Time
}

// onRefused is called after a run ended on a NotOwner refusal. Refusals are
// normal while a range moves; the same file refused for BlockedAfter blocks
// the stream (reason refused): a sorter refuses a batch it must not apply,
// e.g. one carrying a commit below the range's published watermark.
func (st *stream) onRefused(err error) {
	st.mu.Lock()
	seq := st.refused
	st.mu.Unlock()
	now := time.Now()
	if st.refuse.seq != seq || st.refuse.since.IsZero() {
		st.refuse = refuseState{seq: seq, since: now}
		return
	}
	if waited := now.Sub(st.refuse.since); waited >= st.s.cfg.BlockedAfter {
		st.block(blockRefused, seq, "", fmt.Errorf("the sorter has refused file %d for %s (see the sorter's log): %w", seq, waited.Round(time.Millisecond), err))
	}
}

// settle lets the files sent before a bad one be acknowledged before the
// run ends (within DrainTimeout), so the checkpoint reaches the file before
// the bad one at once instead of over several retries: requests still
// queued when a run ends are dropped.
func (st *stream) settle(r *runState) {
	end := time.Now().Add(st.s.cfg.DrainTimeout)
	for st.windowLen() > 0 && !st.draining() {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		_, err := st.await(r, st.spaceCh, st.drain, t.C)
		t.Stop()
		if err != nil {
			return
		}
	}
}
