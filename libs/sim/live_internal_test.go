package sim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
)

// The live-table list, kept up to date DDL by DDL (setLive), is at every
// simulated second the list a sort of the table map gives.
func TestLiveTablesFollowDDL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Duration = 10 * time.Second
	cfg.Tables = 30
	cfg.DDLEvery = 20 * time.Millisecond
	cfg.RowsPerSec = 500
	ids := func(ts []*table) (out []int64) {
		for _, t := range ts {
			out = append(out, t.id)
		}
		return out
	}
	var s *Sim
	checks := 0
	s, err := New(cfg, Options{Store: objstore.NewMemory(), Progress: func(Stats) {
		for _, tn := range s.tenants {
			require.Equal(t, ids(liveTables(tn.tables)), ids(tn.liveTables()))
			checks++
		}
	}})
	require.NoError(t, err)
	st, err := s.Run(context.Background())
	require.NoError(t, err)
	require.Greater(t, int(st.DDLs), 100)
	require.GreaterOrEqual(t, checks, 9)
}
