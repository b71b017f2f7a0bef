package etcdx

import (
	"fmt"
	"strconv"
	"strings"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Root is the prefix of every key TiStream writes in etcd.
const Root = "/tistream/v1/"

// Prefixes of the key families.
const (
	ElectionPrefix   = Root + "meta/election"
	WorkersPrefix    = Root + "workers/"
	TenantsPrefix    = Root + "tenants/"
	RangesPrefix     = Root + "ranges/"
	StreamsPrefix    = Root + "streams/"
	CheckpointPrefix = Root + "checkpoints/"
	DrainsPrefix     = Root + "drains/"
)

// KindName is a worker kind's name in keys and messages.
func KindName(k metav1.WorkerKind) string { return kindName(k) }

func kindName(k metav1.WorkerKind) string {
	switch k {
	case metav1.WorkerKind_WORKER_KIND_DISPATCHER:
		return "dispatcher"
	case metav1.WorkerKind_WORKER_KIND_SORTER:
		return "sorter"
	}
	return "unknown"
}

// WorkerPrefix holds the workers of one kind.
func WorkerPrefix(k metav1.WorkerKind) string { return WorkersPrefix + kindName(k) + "/" }

// WorkerKey is a worker's registration (attached to its lease).
func WorkerKey(k metav1.WorkerKind, id string) string { return WorkerPrefix(k) + id }

// DrainKey is a drain request for a worker (MetaService DrainWorker).
func DrainKey(k metav1.WorkerKind, id string) string { return DrainsPrefix + kindName(k) + "/" + id }

// TenantKey is a registered tenant.
func TenantKey(tenant uint64) string { return TenantsPrefix + u(tenant) }

// RangeTenantPrefix holds one tenant's range tasks.
func RangeTenantPrefix(tenant uint64) string { return RangesPrefix + u(tenant) + "/" }

// RangeKey is one range task.
func RangeKey(tenant, rangeID uint64) string { return RangeTenantPrefix(tenant) + u(rangeID) }

// StreamTenantPrefix holds one tenant's stream tasks.
func StreamTenantPrefix(tenant uint64) string { return StreamsPrefix + u(tenant) + "/" }

// StreamKey is one (tenant, store) stream task.
func StreamKey(tenant, store uint64) string { return StreamTenantPrefix(tenant) + u(store) }

// CheckpointKey is a stream's durable checkpoint.
func CheckpointKey(tenant, store uint64) string { return CheckpointPrefix + u(tenant) + "/" + u(store) }

func u(n uint64) string { return strconv.FormatUint(n, 10) }

// ParseTwoIDs parses the last two segments of keys like .../{tenant}/{id}.
func ParseTwoIDs(key, prefix string) (a, b uint64, err error) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, 0, fmt.Errorf("etcd key %q is not under %q", key, prefix)
	}
	x, y, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("etcd key %q: want %s{id}/{id}", key, prefix)
	}
	if a, err = strconv.ParseUint(x, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("etcd key %q: %w", key, err)
	}
	if b, err = strconv.ParseUint(y, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("etcd key %q: %w", key, err)
	}
	return a, b, nil
}
