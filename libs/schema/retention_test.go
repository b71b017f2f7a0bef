package schema_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// simHistory is the history of a simulated tenant with frequent DDL, and
// the truth's DDLs.
func simHistory(t testing.TB) (*schema.History, []truth.DDL) {
	cfg := sim.DefaultConfig()
	cfg.Duration = 10 * time.Second
	cfg.RowsPerSec = 200
	cfg.DDLEvery = 200 * time.Millisecond
	store, truthBytes, st := simtest.Run(t, cfg)
	_, _, snap := simSnapshot(t, store, cfg.ClusterID)
	h := schema.New(1)
	require.NoError(t, h.LoadSnapshot(snap))
	for _, c := range simtest.CommittedChanges(t, store, cfg.ClusterID, 1, cfg.Stores) {
		if c.Key[0] != 'm' {
			continue
		}
		op := formatv1.Op_OP_PUT
		if c.Delete {
			op = formatv1.Op_OP_DELETE
		}
		_, err := h.ApplyMeta(c.CommitTs, c.Key, op, c.Value)
		require.NoError(t, err)
	}
	h.SetResolved(st.FinalResolvedTs)
	var ddls []truth.DDL
	r := truth.NewReader(bytes.NewReader(truthBytes), "truth")
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if l.Kind == truth.KindDDL {
			ddls = append(ddls, l.DDL)
		}
	}
	require.Greater(t, len(ddls), 20)
	return h, ddls
}

func clone(t testing.TB, h *schema.History) *schema.History {
	b, err := h.Encode()
	require.NoError(t, err)
	c, err := schema.Decode("clone", b)
	require.NoError(t, err)
	return c
}

// answersAt is everything the history says about ts, for comparisons.
func answersAt(h *schema.History, ts uint64) map[string]any {
	out := map[string]any{"version": h.SchemaVersionAt(ts)}
	for _, d := range h.DBs(ts) {
		out["db "+d.Info.Name.O] = string(d.Raw)
		for _, tb := range h.Tables(d.Info.ID, ts) {
			out["table "+tb.Info.Name.O] = []any{tb.Ts, tb.DBID, string(tb.Raw)}
		}
		out["since "+d.Info.Name.O] = h.TableIDsSince(d.Info.ID, ts)
	}
	out["changes after"] = h.Changes(ts, h.Resolved())
	return out
}

func TestChangeLogMatchesTruth(t *testing.T) {
	h, ddls := simHistory(t)
	cs := h.Changes(h.Floor(), h.Resolved())
	kinds := map[string]schema.ChangeKind{"create_table": schema.ChangeCreateTable, "drop_table": schema.ChangeDropTable,
		"truncate_table": schema.ChangeCreateTable}
	i := 0
	for _, d := range ddls {
		if d.Action == "truncate_table" {
			// The old table's drop, then the new one's creation.
			require.Equal(t, schema.ChangeDropTable, cs[i].Kind, "%+v", d)
			require.Equal(t, d.OldTableID, cs[i].TableID, "%+v", d)
			require.Equal(t, cs[i].Job, cs[i+1].Job, "both halves carry the job")
			i++
		}
		c := cs[i]
		i++
		want, ok := kinds[d.Action]
		if !ok {
			want = schema.ChangeAlterTable
		}
		require.Equal(t, d.CommitTs, c.CommitTs, "%+v", d)
		require.Equal(t, want, c.Kind, "%+v", d)
		require.Equal(t, d.SchemaVersion, c.SchemaVersion, "%+v", d)
		require.Equal(t, d.TableID, c.TableID, "%+v", d)
		require.Equal(t, d.DBID, c.DBID, "%+v", d)
		require.Equal(t, d.TableName, c.TableName)
		require.Equal(t, d.DBName, c.DBName)
		require.Equal(t, d.JobID, c.Job.GetID())
	}
	require.Len(t, cs, i, "one change per DDL step, two per truncate")
}

// Truncate keeps every answer for ts at or above the new floor.
func TestTruncateKeepsAnswersFromTheFloor(t *testing.T) {
	full, ddls := simHistory(t)
	floor, resolved := full.Floor(), full.Resolved()
	mid := ddls[len(ddls)/2].CommitTs
	for _, cut := range []uint64{floor + (resolved-floor)/4, mid - 1, mid, mid + 1, resolved - (resolved-floor)/10, resolved} {
		h := clone(t, full)
		require.True(t, h.Truncate(cut))
		require.Equal(t, cut, h.Floor())
		require.False(t, h.Truncate(cut-1), "the floor never moves back")
		require.Less(t, h.ChangeCount(), full.ChangeCount()+1)
		points := []uint64{cut, cut + 1, resolved}
		for _, d := range ddls {
			for _, ts := range []uint64{d.CommitTs - 1, d.CommitTs, d.CommitTs + 1} {
				if ts >= cut && ts <= resolved {
					points = append(points, ts)
				}
			}
		}
		for _, ts := range points {
			require.Equal(t, answersAt(full, ts), answersAt(h, ts), "cut %d, ts %d", cut, ts)
		}
		require.Equal(t, full.Changes(cut-1, resolved), h.Changes(cut-1, resolved), "changes at or after the floor stay")
		again := clone(t, h)
		require.Equal(t, cut, again.Floor())
		for _, ts := range points {
			require.Equal(t, answersAt(h, ts), answersAt(again, ts), "persisted, cut %d, ts %d", cut, ts)
		}
	}
	h := clone(t, full)
	require.True(t, h.Truncate(resolved+1000))
	require.Equal(t, resolved, h.Floor(), "the floor stops at the resolved ts")
	require.Equal(t, answersAt(full, resolved), answersAt(h, resolved))
}
