package etcdx

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// A taken port is recognised (StartEmbedded tries new ones only for ports
// it picked itself); a port the caller named is never swapped for another.
func TestEmbeddedBindRetryOnlyForPickedPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, err = net.Listen("tcp", l.Addr().String())
	require.Error(t, err)
	require.True(t, isAddrInUse(err))
	require.False(t, isAddrInUse(net.ErrClosed))

	require.True(t, portZero(""))
	require.True(t, portZero("127.0.0.1:0"))
	require.False(t, portZero("127.0.0.1:2379"))

	_, err = StartEmbedded(EmbeddedConfig{Dir: t.TempDir(), ClientAddr: l.Addr().String(), PeerAddr: "127.0.0.1:0"})
	require.Error(t, err, "the named client port is taken: no other port instead")
	require.True(t, isAddrInUse(err), "%v", err)
}
