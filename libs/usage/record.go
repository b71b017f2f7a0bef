package usage

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/objstore"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// FormatVersion is the version of the usage records this package writes;
// a reader refuses a higher one (docs/key-layout.md, "Usage records").
const FormatVersion = 1

// ErrBadRecord is a usage object that does not decode, or is of a later
// format version.
var ErrBadRecord = errors.New("bad usage record")

// Encode serializes a record, stamping the format version.
func Encode(r *metav1.UsageRecord) []byte {
	r.FormatVersion = FormatVersion
	b, err := proto.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("marshal usage record: %v", err)) // a well-formed message always marshals
	}
	return b
}

// Decode parses a record read from key, checking what a record must say.
func Decode(key string, b []byte) (*metav1.UsageRecord, error) {
	r := &metav1.UsageRecord{}
	if err := proto.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadRecord, key, err)
	}
	switch {
	case r.FormatVersion == 0 || r.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("%w %s: format version %d (this reader knows 1..%d)", ErrBadRecord, key, r.FormatVersion, FormatVersion)
	case r.Kind == metav1.UsageRecordKind_USAGE_RECORD_KIND_UNSPECIFIED:
		return nil, fmt.Errorf("%w %s: no kind", ErrBadRecord, key)
	case r.HourUnixMs%HourMs != 0:
		return nil, fmt.Errorf("%w %s: hour %d is not the start of an hour", ErrBadRecord, key, r.HourUnixMs)
	}
	if r.Counts == nil {
		r.Counts = &metav1.UsageCounts{}
	}
	return r, nil
}

// putOnce writes a record put-if-absent: an existing object at key is an
// earlier attempt of the same write (keys are never reused for other
// content), so it counts as written.
func putOnce(ctx context.Context, s objstore.Store, key string, r *metav1.UsageRecord) error {
	err := s.PutIfAbsent(ctx, key, Encode(r))
	if err != nil && !errors.Is(err, objstore.ErrExists) {
		return fmt.Errorf("write usage record %s: %w", key, err)
	}
	return nil
}

// readAll reads and decodes the records under prefix that keep accepts
// (nil: all), in key order. Records that do not decode are returned in bad
// (and skipped), so one damaged object does not stop metering.
func readAll(ctx context.Context, s objstore.Store, prefix string, keep func(key string) bool) (recs []*metav1.UsageRecord, keys []string, bad []error, err error) {
	objs, err := objstore.ListAll(ctx, s, prefix, "")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list usage records %s: %w", prefix, err)
	}
	for _, o := range objs {
		if keep != nil && !keep(o.Key) {
			continue
		}
		b, err := s.Get(ctx, o.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // deleted by a rollup meanwhile
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read usage record: %w", err)
		}
		r, err := Decode(o.Key, b)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		recs = append(recs, r)
		keys = append(keys, o.Key)
	}
	return recs, keys, bad, nil
}
