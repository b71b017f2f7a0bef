package sorter

import (
	"flag"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/tlsx"
)

func TestConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.ErrorContains(t, cfg.Validate(), "--tls-ca is required", "TLS by default")
	cfg.Security.TLS = tlsx.Files{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"}
	require.NoError(t, cfg.Validate())
	require.Equal(t, "0.0.0.0:7340", cfg.GRPCAddr)
	require.Equal(t, "0.0.0.0:7341", cfg.HTTPAddr)
	require.Equal(t, 10*time.Second, cfg.LeaseTTL)
	require.Equal(t, 200*time.Millisecond, cfg.FlushInterval)
	require.Equal(t, int64(16<<20), cfg.FlushBytes)
	require.Equal(t, 5*time.Second, cfg.SnapshotInterval)
	require.Equal(t, int64(512<<20), cfg.BufferMemory)
	require.Equal(t, int64(128<<20), cfg.WriteStallBytes)
	require.Zero(t, cfg.Workers)
	require.Equal(t, max(8, 4*runtime.GOMAXPROCS(0)), cfg.workers())

	fs := flag.NewFlagSet("sorter", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--id=s7", "--advertise-addr=h:1", "--lease-ttl=3s", "--data-dir=/d",
		"--flush-interval=1s", "--snapshot-interval=2s", "--buffer-shards=3", "--buffer-memory=1048576", "--workers=3",
		"--write-stall-bytes=0", "--flush-bytes=0"}))
	require.Equal(t, "s7", cfg.ID)
	require.Equal(t, "h:1", cfg.AdvertiseAddr)
	require.Equal(t, 3*time.Second, cfg.LeaseTTL)
	require.Equal(t, "/d", cfg.dataDir())
	require.Equal(t, 3, cfg.Buffer.Shards)
	require.Equal(t, int64(1<<20), cfg.BufferMemory)
	require.Equal(t, 3, cfg.workers())
	require.Zero(t, cfg.WriteStallBytes)
	require.Zero(t, cfg.FlushBytes)
	cfg.DataDir = ""
	require.Equal(t, "tistream-sorter-s7", filepath.Base(cfg.dataDir()))

	bad := DefaultConfig()
	bad.ID, bad.LeaseTTL, bad.FlushInterval, bad.SnapshotInterval = "", 0, 0, -1
	bad.Buffer.Shards = 0
	bad.BufferMemory = -1
	bad.Workers = -1
	bad.WriteStallBytes = -1
	bad.FlushBytes = -1
	err := bad.Validate()
	require.Error(t, err)
	for _, name := range []string{"--id", "--lease-ttl", "--flush-interval", "--snapshot-interval", "shards", "--buffer-memory", "--workers", "--write-stall-bytes", "--flush-bytes"} {
		require.ErrorContains(t, err, name)
	}
	_, err = New(bad, Deps{})
	require.Error(t, err)
	good := DefaultConfig()
	good.Security.Insecure = true
	_, err = New(good, Deps{})
	require.ErrorContains(t, err, "etcd")
}
