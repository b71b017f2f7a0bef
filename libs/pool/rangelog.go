package pool

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// ErrFenced means another owner with a greater epoch has taken the range
// over: the caller must stop writing it.
var ErrFenced = errors.New("range owned by a newer owner")

// ErrNoRange means the range has no log (never opened, or fully expired).
var ErrNoRange = errors.New("range has no log")

// EncodeEntry encodes a range log entry file.
func EncodeEntry(e *formatv1.RangeLogEntry) ([]byte, error) {
	w := container.NewWriter(container.KindRangeLog, container.Options{})
	if err := w.AppendMessage(e); err != nil {
		return nil, err
	}
	return w.Finish()
}

// DecodeEntry decodes and checks a range log entry file.
func DecodeEntry(name string, data []byte) (*formatv1.RangeLogEntry, error) {
	r, err := container.Open(name, data, container.KindRangeLog)
	if err != nil {
		return nil, err
	}
	e := &formatv1.RangeLogEntry{}
	if err := r.NextMessage(e); err != nil {
		if err == io.EOF {
			return nil, r.Corrupt(nil, "no entry")
		}
		return nil, err
	}
	if _, err := r.Next(); err != io.EOF {
		if err == nil {
			return nil, r.Corrupt(nil, "more than one record in a range log entry")
		}
		return nil, err
	}
	if err := checkEntry(e); err != nil {
		return nil, r.Corrupt(err, "bad range log entry")
	}
	return e, nil
}

func checkEntry(e *formatv1.RangeLogEntry) error {
	switch {
	case e.Seq == 0:
		return errors.New("seq is 0")
	case e.Watermark < e.PrevWatermark:
		return fmt.Errorf("watermark %d below prev_watermark %d", e.Watermark, e.PrevWatermark)
	case e.Kind == formatv1.RangeLogEntry_KIND_OPEN && e.Seq != 1:
		return fmt.Errorf("OPEN entry at seq %d", e.Seq)
	case e.Kind != formatv1.RangeLogEntry_KIND_OPEN && e.Seq == 1:
		return fmt.Errorf("seq 1 is %s, not OPEN", e.Kind)
	case e.Kind == formatv1.RangeLogEntry_KIND_UNSPECIFIED || e.Kind > formatv1.RangeLogEntry_KIND_SEAL:
		return fmt.Errorf("unknown kind %d", e.Kind)
	case e.File != nil && e.Kind != formatv1.RangeLogEntry_KIND_FLUSH:
		return fmt.Errorf("%s entry names a file", e.Kind)
	case e.File != nil && (e.File.RowCount == 0 || e.File.MinCommitTs <= e.PrevWatermark || e.File.MaxCommitTs > e.Watermark):
		return fmt.Errorf("file %s: %d rows in [%d, %d] do not fit (%d, %d]", e.File.Key, e.File.RowCount,
			e.File.MinCommitTs, e.File.MaxCommitTs, e.PrevWatermark, e.Watermark)
	case e.Kind != formatv1.RangeLogEntry_KIND_FLUSH && e.Watermark != e.PrevWatermark:
		return fmt.Errorf("%s entry moves the watermark", e.Kind)
	}
	return checkV2Entry(e)
}

// checkV2Entry checks the fields of format version 2 (group segments).
func checkV2Entry(e *formatv1.RangeLogEntry) error {
	if e.Group == "" {
		if e.GroupSeq != 0 || e.PrevGroup != "" || e.PrevGroupSeq != 0 {
			return errors.New("group fields set without a group")
		}
		return nil
	}
	switch {
	case !layout.ValidGroupID(e.Group):
		return fmt.Errorf("group id %q", e.Group)
	case e.Kind == formatv1.RangeLogEntry_KIND_FLUSH:
		return errors.New("a FLUSH entry names a group")
	case e.Kind != formatv1.RangeLogEntry_KIND_SEAL && e.GroupSeq == 0:
		return fmt.Errorf("%s entry opens a segment at seq 0", e.Kind)
	case e.PrevGroup != "" && e.Kind != formatv1.RangeLogEntry_KIND_TAKEOVER:
		return fmt.Errorf("%s entry names a previous group", e.Kind)
	case e.PrevGroup != "" && !layout.ValidGroupID(e.PrevGroup):
		return fmt.Errorf("previous group id %q", e.PrevGroup)
	case e.PrevGroup == "" && e.PrevGroupSeq != 0:
		return errors.New("previous group seq without a previous group")
	}
	return nil
}

// segmentOpener reports whether e opens a segment of group publications.
func segmentOpener(e *formatv1.RangeLogEntry) bool {
	return e.Group != "" && (e.Kind == formatv1.RangeLogEntry_KIND_OPEN || e.Kind == formatv1.RangeLogEntry_KIND_TAKEOVER)
}

// GetEntry reads log entry seq; it returns an error matching
// objstore.ErrNotFound when the entry does not exist (yet).
func GetEntry(ctx context.Context, store objstore.Store, tenant, rangeID, seq uint64) (*formatv1.RangeLogEntry, error) {
	key := layout.RangeLogKey(tenant, rangeID, seq)
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	e, err := DecodeEntry(key, b)
	if err != nil {
		return nil, err
	}
	if e.TenantId != tenant || e.RangeId != rangeID || e.Seq != seq {
		return nil, fmt.Errorf("%s: entry says tenant %d range %d seq %d", key, e.TenantId, e.RangeId, e.Seq)
	}
	return e, nil
}

// headHintKey names a best-effort pointer to a recent log seq, so finding the
// head does not list the whole log.
func headHintKey(tenant, rangeID uint64) string {
	return layout.RangePrefix(tenant, rangeID) + "head"
}

// hintEvery is how often (in entries) writers refresh the head hint.
const hintEvery = 64

// FindHead returns the last entry of a range's log and the first seq still
// present (entries before it expired). It lists from the head hint, so the
// cost does not grow with the log's age.
//
// "First" is the first entry at or above the range's retention floor
// (floorPrefix): compaction keeps the OPEN entry (seq 1) forever, and a
// fenced owner may have re-created an entry below the floor after it was
// deleted; both are ignored. With no floor, first is the first entry listed.
func FindHead(ctx context.Context, store objstore.Store, tenant, rangeID uint64) (head *formatv1.RangeLogEntry, first uint64, err error) {
	head, first, _, err = findHead(ctx, store, tenant, rangeID)
	return head, first, err
}

// findHead is FindHead that also returns the floor it used (0 = none), so a
// reader can tell afterwards whether compaction moved it meanwhile.
func findHead(ctx context.Context, store objstore.Store, tenant, rangeID uint64) (head *formatv1.RangeLogEntry, first, floor uint64, err error) {
	prefix := layout.RangeLogPrefix(tenant, rangeID)
	if floor, err = readFloor(ctx, store, tenant, rangeID); err != nil {
		return nil, 0, 0, err
	}
	from := ""
	if floor > 1 {
		from = layout.RangeLogKey(tenant, rangeID, floor-1)
	}
	firstPage, _, err := store.List(ctx, prefix, from, 1)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(firstPage) == 0 {
		if floor > 0 {
			// DeleteRange moved the floor past the head: the whole range
			// expired.
			return nil, 0, 0, fmt.Errorf("%s: every entry is below the retention floor %d: the range expired: %w", prefix, floor, ErrCompacted)
		}
		return nil, 0, 0, fmt.Errorf("%s: %w", prefix, ErrNoRange)
	}
	if first, err = seqOf(firstPage[0].Key); err != nil {
		return nil, 0, 0, err
	}
	after := ""
	if b, err := store.Get(ctx, headHintKey(tenant, rangeID)); err == nil {
		if hint, err := seqOf(string(b)); err == nil && hint > first {
			after = layout.RangeLogKey(tenant, rangeID, hint-1)
		}
	}
	if after == "" {
		after = from
	}
	last := ""
	for {
		page, more, err := store.List(ctx, prefix, after, 0)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		if len(page) > 0 {
			last = page[len(page)-1].Key
			after = last
		}
		if !more {
			break
		}
	}
	if last == "" { // the hint pointed past the end: list everything
		all, err := objstore.ListAll(ctx, store, prefix, from)
		if err != nil {
			return nil, 0, 0, err
		}
		if len(all) == 0 {
			return nil, 0, 0, fmt.Errorf("%s: %w", prefix, ErrNoRange)
		}
		last = all[len(all)-1].Key
	}
	seq, err := seqOf(last)
	if err != nil {
		return nil, 0, 0, err
	}
	head, err = GetEntry(ctx, store, tenant, rangeID, seq)
	return head, first, floor, err
}

func seqOf(key string) (uint64, error) {
	i := len(key) - 20
	if i < 0 {
		return 0, fmt.Errorf("range log key %q has no 20-digit seq", key)
	}
	var n uint64
	for _, c := range key[i:] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("range log key %q has no 20-digit seq", key)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}
