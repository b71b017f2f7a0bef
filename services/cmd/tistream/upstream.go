package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/grpcx"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// upstream is how the simulator talks to a running fleet: it registers each
// tenant and notifies each store file, as a TiKV-side pusher would.
type upstream struct {
	conn          *grpcx.LeaderConn
	meta          metav1.MetaServiceClient
	initialRanges uint32
	// settings, if set, go with every registration (tistream sim --kek).
	settings *metav1.TenantSettings
	stderr   io.Writer
	failed   atomic.Int64
}

func newUpstream(addr string, cc *clientCreds, initialRanges uint32, stderr io.Writer) (*upstream, error) {
	conn, err := cc.dialMeta(addr)
	if err != nil {
		return nil, err
	}
	return &upstream{conn: conn, meta: metav1.NewMetaServiceClient(conn), initialRanges: initialRanges, stderr: stderr}, nil
}

func (u *upstream) Close() error { return u.conn.Close() }

// registerTimeout bounds one RegisterTenant call: the meta-server reads
// and checks the tenant's whole schema snapshot in it, about 10 s at
// 1,000,000 tables on a 2-core machine (a 10 s bound made such a
// registration time out, and each retry start over).
const registerTimeout = 2 * time.Minute

// RegisterTenant retries for up to a minute: a fleet that just started may
// still be electing its meta-server leader.
func (u *upstream) RegisterTenant(ctx context.Context, cluster, tenant uint64) error {
	deadline := time.Now().Add(time.Minute)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, registerTimeout)
		_, err := u.meta.RegisterTenant(cctx, &metav1.RegisterTenantRequest{ClusterId: cluster, TenantId: tenant, InitialRanges: u.initialRanges, Settings: u.settings})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("register tenant %d: %w", tenant, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// NotifyFile is best effort: dispatchers also list the buffer, so a lost
// notification only costs latency. Failures are counted and reported.
func (u *upstream) NotifyFile(ctx context.Context, _ string, h *formatv1.StoreFileHeader) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := u.meta.NotifyStoreFile(cctx, &metav1.NotifyStoreFileRequest{ClusterId: h.ClusterId, TenantId: h.TenantId,
		StoreId: h.StoreId, Seq: h.Seq, MaxTs: h.MaxTs})
	if err != nil && u.failed.Add(1)%100 == 1 {
		fmt.Fprintf(u.stderr, "sim: notify store %d file %d: %v (dispatchers will find it by listing)\n", h.StoreId, h.Seq, err)
	}
	return nil
}
