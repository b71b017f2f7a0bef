package svc

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAdvertiseAddr(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, "db-1:7000", AdvertiseAddr("db-1:7000", "0.0.0.0:7340"))
	require.Equal(t, "127.0.0.1:7340", AdvertiseAddr("", "127.0.0.1:7340"))
	require.Equal(t, host+":7340", AdvertiseAddr("", "0.0.0.0:7340"))
	require.Equal(t, host+":7340", AdvertiseAddr("", "[::]:7340"))
}

func TestWorkerFlagsAndValidate(t *testing.T) {
	w := DefaultWorker("sorter")
	require.NoError(t, w.Validate())
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	w.RegisterFlags(fs, "sorter")
	require.NoError(t, fs.Parse([]string{"--id", "", "--lease-ttl", "500ms"}))
	err := w.Validate()
	require.ErrorContains(t, err, "--id is required")
	require.ErrorContains(t, err, "--lease-ttl must be at least 1s")
}

func TestConfigFileIsStrictAndFlagsWin(t *testing.T) {
	type cfg struct {
		Common `yaml:",inline"`
		Worker `yaml:",inline"`
	}
	c := cfg{Common: Common{GRPCAddr: ":1", HTTPAddr: ":2", LogLevel: "info", LogFormat: "text", StopTimeout: time.Second},
		Worker: DefaultWorker("sorter")}
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("id: from-file\nlease_ttl: 3s\ngrpc_addr: :9\n"), 0o644))
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	configPath := fs.String("config", "", "")
	c.Common.RegisterFlags(fs, "")
	c.Worker.RegisterFlags(fs, "sorter")
	require.NoError(t, ParseWithConfig(fs, []string{"--config", path, "--grpc-addr", ":8"}, configPath, &c))
	require.Equal(t, "from-file", c.ID)
	require.Equal(t, 3*time.Second, c.LeaseTTL)
	require.Equal(t, ":8", c.GRPCAddr, "a flag wins over the file")
	require.NoError(t, os.WriteFile(path, []byte("lease_tll: 3s\n"), 0o644))
	require.ErrorContains(t, LoadYAML(path, &c), "lease_tll")
}
