package simtest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
)

// Version1Fixture returns, in a memory store, store change files of store
// file format version 1 written by the writer before format version 2
// existed (testdata/v1history: one tenant, three stores, crashes with
// takeovers and restarts, 27 files), and the simulator configuration they
// were written with: the same seed writes the same history in format
// version 2, so old and new files of one history can be compared.
func Version1Fixture(t testing.TB) (objstore.Store, sim.Config) {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok)
	dir := filepath.Join(filepath.Dir(self), "testdata", "v1history")
	store := objstore.NewMemory()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(strings.TrimPrefix(path, dir+string(filepath.Separator)))
		return store.Put(context.Background(), key, b)
	})
	require.NoError(t, err)
	cfg := sim.ChaosConfig()
	cfg.Seed = 7
	cfg.Tenants = 1
	cfg.Duration = 8 * time.Second
	cfg.RowsPerSec = 200
	cfg.LargeTxnRows = 300
	cfg.Regions = 24
	cfg.Tables = 10
	// The fixture was written before the simulator wrote ROLLBACKs without
	// PREWRITE and value-carrying lock rewrites.
	cfg.OrphanRollbackRatio = 0
	cfg.LockValueRewrites = false
	return store, cfg
}
