// Package pulltest pulls a pool to its end in tests and checks the stream
// against the simulator's truth.
package pulltest

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pull"
	"github.com/tistream/tistream/libs/truth"
	"github.com/tistream/tistream/libs/verify"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Pull pulls req from the pool until it has caught up: the rows, and the
// stream rendered as the JSON Lines verify reads.
func Pull(t testing.TB, store objstore.Store, req pull.Request) ([]pull.Row, []byte) {
	t.Helper()
	ctx := context.Background()
	s, err := pull.Open(ctx, store, req)
	require.NoError(t, err)
	var out bytes.Buffer
	w := truth.NewWriter(&out)
	var all []pull.Row
	var last uint64
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "pull never caught up")
		rows, resolved, caughtUp, err := s.Next(ctx)
		require.NoError(t, err)
		for _, r := range rows {
			op := truth.OpPut
			if r.Op == formatv1.Op_OP_DELETE {
				op = truth.OpDelete
			}
			require.NoError(t, w.WriteRow(truth.Row{Tenant: req.Tenant, TableID: r.TableID, CommitTs: r.CommitTs, StartTs: r.StartTs,
				Op: op, Key: r.Key, Value: r.Value, SchemaVersion: r.SchemaVersion}))
		}
		all = append(all, rows...)
		if resolved > last {
			last = resolved
			require.NoError(t, w.WriteResolved(truth.Resolved{Ts: resolved}))
		}
		if caughtUp {
			break
		}
	}
	require.NoError(t, w.Flush())
	return all, out.Bytes()
}

// Check verifies a pulled stream against the truth and fails the test with
// verify's report.
func Check(t testing.TB, truthFile, pulled []byte, opts verify.Options) {
	t.Helper()
	rep, err := verify.Check(bytes.NewReader(truthFile), bytes.NewReader(pulled), opts)
	require.NoError(t, err)
	if !rep.OK() {
		var b bytes.Buffer
		rep.Print(&b)
		t.Fatalf("verify failed:\n%s", b.String())
	}
}
