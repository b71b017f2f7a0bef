package etcdx

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
)

// Registration is a worker's presence in etcd: its WorkerInfo under a lease
// kept alive by a session. When the process dies or is paused past the TTL,
// the key goes away and the meta-server moves the worker's tasks.
type Registration struct {
	Session *concurrency.Session
	key     string
	cli     *clientv3.Client
	mu      sync.Mutex // serialises updates of info
	info    *metav1.WorkerInfo
}

// Register puts info under the worker's key with a lease of ttl.
func Register(ctx context.Context, cli *clientv3.Client, info *metav1.WorkerInfo, ttl time.Duration) (*Registration, error) {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(int(max(ttl/time.Second, 1))), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("etcd session for worker %s: %w", info.Id, err)
	}
	r := &Registration{Session: s, key: WorkerKey(info.Kind, info.Id), info: info, cli: cli}
	if _, err := cli.Put(ctx, r.key, Marshal(info), clientv3.WithLease(s.Lease())); err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd register worker %s: %w", info.Id, err)
	}
	return r, nil
}

// UpdateLoad republishes the worker's measured load.
func (r *Registration) UpdateLoad(ctx context.Context, load float64) error {
	return r.Update(ctx, func(info *metav1.WorkerInfo) { info.Load = load })
}

// Update changes the worker's published WorkerInfo with change and puts it
// again under the lease. Updates are serialised; id, kind, address and
// start time should not be changed.
func (r *Registration) Update(ctx context.Context, change func(*metav1.WorkerInfo)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(r.info)
	_, err := r.cli.Put(ctx, r.key, Marshal(r.info), clientv3.WithLease(r.Session.Lease()))
	return err
}

// Info is a copy of the published WorkerInfo.
func (r *Registration) Info() *metav1.WorkerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return proto.Clone(r.info).(*metav1.WorkerInfo)
}

// Done is closed when the lease is lost (expired or revoked).
func (r *Registration) Done() <-chan struct{} { return r.Session.Done() }

// Close revokes the lease: the worker leaves at once instead of after the TTL.
func (r *Registration) Close() error { return r.Session.Close() }

// CurrentRegistration holds a worker's live registration, replaced after a
// lost lease; nil while it has none. Safe for concurrent use.
type CurrentRegistration struct {
	mu sync.Mutex
	r  *Registration
}

// Get returns the current registration, or nil.
func (c *CurrentRegistration) Get() *Registration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r
}

// Set replaces the current registration (nil: none).
func (c *CurrentRegistration) Set(r *Registration) {
	c.mu.Lock()
	c.r = r
	c.mu.Unlock()
}
