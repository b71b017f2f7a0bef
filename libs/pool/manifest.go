package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// ErrNoManifest means the tenant has no manifest in the pool.
var ErrNoManifest = errors.New("tenant has no manifest")

// EncodeManifest encodes a manifest file.
func EncodeManifest(m *formatv1.Manifest) ([]byte, error) {
	if err := CheckManifest(m); err != nil {
		return nil, err
	}
	w := container.NewWriter(container.KindManifest, container.Options{Codec: container.CodecZstd})
	if err := w.AppendMessage(m); err != nil {
		return nil, err
	}
	return w.Finish()
}

// DecodeManifest decodes and checks a manifest file.
func DecodeManifest(name string, data []byte) (*formatv1.Manifest, error) {
	r, err := container.Open(name, data, container.KindManifest)
	if err != nil {
		return nil, err
	}
	m := &formatv1.Manifest{}
	if err := r.NextMessage(m); err != nil {
		if err == io.EOF {
			return nil, r.Corrupt(nil, "no manifest")
		}
		return nil, err
	}
	if err := CheckManifest(m); err != nil {
		return nil, r.Corrupt(err, "bad manifest")
	}
	return m, nil
}

// CheckManifest verifies that the active ranges tile the key space (no gap,
// no overlap) and that ids are unique and below next_range_id.
func CheckManifest(m *formatv1.Manifest) error {
	seen := map[uint64]bool{}
	var active []*formatv1.RangeDescriptor
	for _, r := range m.Ranges {
		if r.RangeId == 0 || r.RangeId >= m.NextRangeId {
			return fmt.Errorf("range id %d outside [1, next_range_id %d)", r.RangeId, m.NextRangeId)
		}
		if seen[r.RangeId] {
			return fmt.Errorf("range %d listed twice", r.RangeId)
		}
		seen[r.RangeId] = true
		if len(r.EndKey) > 0 && bytes.Compare(r.StartKey, r.EndKey) >= 0 {
			return fmt.Errorf("range %d: start %x not below end %x", r.RangeId, r.StartKey, r.EndKey)
		}
		switch r.State {
		case formatv1.RangeDescriptor_STATE_ACTIVE:
			active = append(active, r)
		case formatv1.RangeDescriptor_STATE_RETIRED:
			if r.RetiredAtTs < r.OpenedAtTs {
				return fmt.Errorf("range %d retired at %d before it opened at %d", r.RangeId, r.RetiredAtTs, r.OpenedAtTs)
			}
		default:
			return fmt.Errorf("range %d has state %s", r.RangeId, r.State)
		}
	}
	sort.Slice(active, func(i, j int) bool { return bytes.Compare(active[i].StartKey, active[j].StartKey) < 0 })
	var next []byte
	for i, r := range active {
		if !bytes.Equal(r.StartKey, next) {
			return fmt.Errorf("active ranges leave a gap or overlap at %x (range %d starts at %x)", next, r.RangeId, r.StartKey)
		}
		if len(r.EndKey) == 0 && i != len(active)-1 {
			return fmt.Errorf("range %d is unbounded but not the last", r.RangeId)
		}
		next = r.EndKey
	}
	if len(active) == 0 || len(next) != 0 {
		return errors.New("active ranges do not cover the key space up to the end")
	}
	return nil
}

// LoadManifest reads the tenant's latest manifest.
func LoadManifest(ctx context.Context, store objstore.Store, tenant uint64) (*formatv1.Manifest, error) {
	all, err := objstore.ListAll(ctx, store, layout.ManifestPrefix(tenant), "")
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("tenant %d: %w", tenant, ErrNoManifest)
	}
	key := all[len(all)-1].Key
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	m, err := DecodeManifest(key, b)
	if err != nil {
		return nil, err
	}
	if m.TenantId != tenant || layout.ManifestKey(tenant, m.Version) != key {
		return nil, fmt.Errorf("%s: manifest says tenant %d version %d", key, m.TenantId, m.Version)
	}
	return m, nil
}

// PublishManifest writes version m.Version with put-if-absent: concurrent
// writers (two meta-server leaders after a partition) cannot both succeed.
func PublishManifest(ctx context.Context, store objstore.Store, m *formatv1.Manifest) error {
	b, err := EncodeManifest(m)
	if err != nil {
		return err
	}
	key := layout.ManifestKey(m.TenantId, m.Version)
	if err := store.PutIfAbsent(ctx, key, b); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			return fmt.Errorf("manifest version %d of tenant %d already written: %w", m.Version, m.TenantId, ErrFenced)
		}
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Overlaps reports whether range r overlaps [start, end) (end nil = unbounded).
func Overlaps(r *formatv1.RangeDescriptor, start, end []byte) bool {
	return (len(end) == 0 || bytes.Compare(r.StartKey, end) < 0) && (len(r.EndKey) == 0 || bytes.Compare(start, r.EndKey) < 0)
}
