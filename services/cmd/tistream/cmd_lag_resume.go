package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/client"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// maxPullResumes bounds how often one lag run's tenant pull reconnects.
const maxPullResumes = 100

// lagPullResuming is lagPull as a client should run it: when the
// api-server ends the pull with UNAVAILABLE ("reconnect and resume from
// the last resolved ts + 1", e.g. while a split's successors are not yet
// in the manifest), it reconnects from there. Rows are handed to row only
// once a resolved ts covers them, so the rows received after the last
// resolved ts of a failed pull, which the resumed pull sends again, count
// once (their lag is that of the copy that counted). resumes counts the
// reconnections.
func lagPullResuming(ctx context.Context, addr string, creds *clientCreds, tenant uint64,
	row func(*apiv1.RowChange, time.Time), resolved func(uint64) bool, resumes *int) error {
	type got struct {
		r  *apiv1.RowChange
		at time.Time
	}
	var (
		pending []got
		last    uint64
	)
	for {
		err := lagPullWith(ctx, addr, creds, func(ctx context.Context, c apiv1.TiStreamServiceClient) (func() ([]*apiv1.PullEvent, error), error) {
			return recvOf(c.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: tenant, StartTs: startAfter(last)}, client.PullDecoding()))
		}, fmt.Sprintf("tenant %d", tenant), func(r *apiv1.RowChange, now time.Time) {
			pending = append(pending, got{r, now})
		}, func(ts uint64) bool {
			for _, p := range pending {
				row(p.r, p.at)
			}
			pending, last = pending[:0], ts
			return resolved(ts)
		})
		if err == nil || ctx.Err() != nil || status.Code(err) != codes.Unavailable || *resumes >= maxPullResumes {
			return err
		}
		*resumes++
		pending = pending[:0]
	}
}

// startAfter is the start ts of a pull resuming after resolved ts last (0:
// from the start).
func startAfter(last uint64) uint64 {
	if last == 0 {
		return 0
	}
	return last + 1
}
