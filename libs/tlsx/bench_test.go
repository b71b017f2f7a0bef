package tlsx

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// What TLS costs the fleet, in the two parts that matter: a full mutual
// handshake (once per connection; fleet connections live for hours) and the
// record layer on a loopback stream, against the same stream in plain TCP.
// gRPC's own cost is the same with and without TLS, so it is left out.
//
//	go test ./libs/tlsx -run '^$' -bench . -cpu 1
//
// docs/benchmarks.md ("The cost of TLS") has the figures.

func benchSources(b *testing.B) (srv, cli *Source) {
	b.Helper()
	ca, err := NewCA("bench", time.Hour)
	require.NoError(b, err)
	load := func(identity string) *Source {
		dir := b.TempDir()
		s, err := NewSource(credentials(b, ca, dir, identity), nil)
		require.NoError(b, err)
		return s
	}
	return load("spiffe://tistream/sorter/s1"), load("spiffe://tistream/dispatcher/d1")
}

func BenchmarkHandshake(b *testing.B) {
	srv, cli := benchSources(b)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(srv, true))
	require.NoError(b, err)
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	cfg := ClientConfig(cli)
	cfg.ServerName = "127.0.0.1"
	b.ResetTimer()
	for b.Loop() {
		c, err := tls.Dial("tcp", lis.Addr().String(), cfg)
		require.NoError(b, err)
		_, err = c.Write([]byte("x"))
		require.NoError(b, err)
		c.Close()
	}
}

func BenchmarkStream(b *testing.B) {
	const chunk = 64 << 10
	for _, mode := range []string{"plain", "mtls"} {
		b.Run(mode, func(b *testing.B) {
			var lis net.Listener
			var err error
			var dial func() (net.Conn, error)
			if mode == "plain" {
				lis, err = net.Listen("tcp", "127.0.0.1:0")
				dial = func() (net.Conn, error) { return net.Dial("tcp", lis.Addr().String()) }
			} else {
				srv, cli := benchSources(b)
				lis, err = tls.Listen("tcp", "127.0.0.1:0", ServerConfig(srv, true))
				cfg := ClientConfig(cli)
				cfg.ServerName = "127.0.0.1"
				dial = func() (net.Conn, error) { return tls.Dial("tcp", lis.Addr().String(), cfg) }
			}
			require.NoError(b, err)
			defer lis.Close()
			done := make(chan int64, 1)
			go func() {
				c, err := lis.Accept()
				if err != nil {
					done <- 0
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				done <- n
			}()
			c, err := dial()
			require.NoError(b, err)
			buf := make([]byte, chunk)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			b.SetBytes(chunk)
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			require.Equal(b, int64(b.N)*chunk, <-done)
		})
	}
}
