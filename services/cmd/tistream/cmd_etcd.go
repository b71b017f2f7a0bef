package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/tlsx"
)

func init() {
	register(command{name: "etcd", summary: "run a single-member etcd server (embedded) for tests and small setups", run: runEtcd})
}

func runEtcd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "etcd data directory (required)")
	client := fs.String("listen-client", "127.0.0.1:2379", "client address host:port (port 0 = pick one)")
	peer := fs.String("listen-peer", "127.0.0.1:0", "peer address host:port")
	var files tlsx.Files
	fs.StringVar(&files.CertFile, "tls-cert", "", "serve clients over TLS with this PEM certificate (https://), requiring client certificates")
	fs.StringVar(&files.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&files.CAFile, "tls-ca", "", "PEM CAs that client certificates must be signed by")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var tlsFiles *tlsx.Files
	if !files.IsZero() {
		if err := files.Validate(""); err != nil {
			fmt.Fprintf(stderr, "tistream etcd: %v\n", err)
			return 2
		}
		tlsFiles = &files
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "tistream etcd: --data-dir is required")
		return 2
	}
	e, err := etcdx.StartEmbedded(etcdx.EmbeddedConfig{Dir: *dir, ClientAddr: *client, PeerAddr: *peer, TLS: tlsFiles})
	if err != nil {
		fmt.Fprintf(stderr, "tistream etcd: %v\n", err)
		return 1
	}
	defer e.Close()
	fmt.Fprintf(stdout, "etcd serving at %s\n", e.Endpoint)
	<-ctx.Done()
	return 0
}
