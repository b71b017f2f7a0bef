package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/truth"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

func init() {
	register(command{name: "sim", summary: "simulate an upstream TiDB cluster pushing store change files", run: runSim})
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var cc clientCreds
	cc.register(fs)
	fs.SetOutput(stderr)
	cfg := sim.DefaultConfig()
	cfg.RegisterFlags(fs)
	storeURL := fs.String("store", "", "object store for data_change_buffer/ (file:///dir, s3://bucket/prefix?endpoint=...)")
	truthPath := fs.String("truth", "", "write the ground truth (JSON Lines) to this file")
	quiet := fs.Bool("quiet", false, "no progress lines")
	meta := fs.String("meta", "", "push into a running fleet: the meta-server's gRPC address (implies --realtime; with --realtime=false, a backlog: written as fast as it is generated, its clock ending about now)")
	initialRanges := fs.Uint("initial-ranges", 2, "with --meta: ranges each tenant starts with (from 2 on the first holds the meta keys alone)")
	kek := fs.String("kek", "", "with --meta: register the tenants with this key-encryption key (local:NAME or aws-kms:ID; docs/formats/encryption.md)")
	bufferURL := fs.String("buffer-url", "", "with --meta: register the tenants with their own data change buffer (buffer_url; point --store at the same place; docs/tenants.md)")
	credentialsRef := fs.String("credentials-ref", "", "with --meta: register the tenants with this profile of the fleet's --tenant-credentials-file for their --buffer-url (credentials_ref)")
	sealKEK := fs.String("encrypt-buffer-kek", "", "seal every file written to --store in the encryption envelope under this key (local:NAME with --key-dir, aws-kms:ID with --aws-kms-region/--aws-kms-endpoint), as an upstream that encrypts its buffer files does (docs/formats/encryption.md)")
	var enc encryptionConfig
	fs.StringVar(&enc.KeyDir, "key-dir", "", "with --encrypt-buffer-kek local:NAME: the directory of the key file NAME.key")
	fs.StringVar(&enc.AWSRegion, "aws-kms-region", "", "with --encrypt-buffer-kek aws-kms:ID: the AWS KMS region")
	fs.StringVar(&enc.AWSEndpoint, "aws-kms-endpoint", "", "with --encrypt-buffer-kek aws-kms:ID: an AWS KMS endpoint override")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream sim --store URL [--truth FILE] [flags]")
		fmt.Fprintln(stderr, "Simulates TiKV stores and writes what they would push, plus the truth.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *meta == "" && (*kek != "" || *bufferURL != "" || *credentialsRef != "") {
		fmt.Fprintln(stderr, "tistream sim: --kek, --buffer-url and --credentials-ref register tenants: they need --meta")
		return 2
	}
	if *sealKEK != "" && !enc.enabled() {
		fmt.Fprintln(stderr, "tistream sim: --encrypt-buffer-kek needs a KMS: --key-dir for local: keys, --aws-kms-region/--aws-kms-endpoint for aws-kms: keys")
		return 2
	}
	if *storeURL == "" {
		fmt.Fprintln(stderr, "tistream sim: --store is required (for example --store file://./demo-data)")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tistream sim: %v\n", err)
		return 2
	}
	store, err := objstore.Open(ctx, *storeURL)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sim: open --store: %v\n", err)
		return 1
	}
	if *sealKEK != "" {
		router, err := enc.kms(ctx)
		if err == nil {
			store, err = crypt.SealBuffer(store, router, *sealKEK, crypt.Options{})
		}
		if err != nil {
			fmt.Fprintf(stderr, "tistream sim: --encrypt-buffer-kek: %v\n", err)
			return 2
		}
	}
	opts := sim.Options{Store: store}
	if *truthPath != "" {
		f, err := os.Create(*truthPath)
		if err != nil {
			fmt.Fprintf(stderr, "tistream sim: --truth: %v\n", err)
			return 1
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		defer bw.Flush()
		opts.Truth = truth.NewWriter(bw)
	}
	if !*quiet {
		last := time.Now()
		opts.Progress = func(st sim.Stats) {
			if time.Since(last) < 5*time.Second {
				return
			}
			last = time.Now()
			fmt.Fprintf(stderr, "sim: %s simulated, %d rows committed, %d files, %d transactions running\n",
				st.SimTime, st.RowsCommitted, st.Files, st.Inflight)
		}
	}
	if *meta != "" {
		realtimeSet := false
		fs.Visit(func(f *flag.Flag) { realtimeSet = realtimeSet || f.Name == "realtime" })
		if !realtimeSet || cfg.Realtime {
			cfg.Realtime = true
		} else {
			// A backlog pushed into a live fleet as fast as it is made: its
			// TSOs end about now, as if the upstream had pushed it in real
			// time while the fleet could not keep up.
			cfg.StartTime = time.Now().Add(-cfg.Duration)
		}
		up, err := newUpstream(*meta, &cc, uint32(*initialRanges), stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tistream sim: --meta: %v\n", err)
			return 1
		}
		defer up.Close()
		up.settings = simTenantSettings(*kek, *bufferURL, *credentialsRef)
		opts.OnTenant, opts.OnFile = up.RegisterTenant, up.NotifyFile
	}
	s, err := sim.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sim: %v\n", err)
		return 2
	}
	stop, ok := startCPUProfile(*cpuProfile, "sim", stderr)
	if !ok {
		return 2
	}
	defer stop()
	st, err := s.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sim: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote to %s (cluster %d, %d tenants, %d stores, seed %d)\n", store, cfg.ClusterID, cfg.Tenants, cfg.Stores, cfg.Seed)
	st.Print(stdout)
	if *truthPath != "" {
		fmt.Fprintf(stdout, "truth         %s\n", *truthPath)
	}
	return 0
}

// simTenantSettings are the settings `tistream sim --meta` registers each
// tenant with: only those given; nil when none is (the fleet's defaults).
func simTenantSettings(kek, bufferURL, credentialsRef string) *metav1.TenantSettings {
	if kek == "" && bufferURL == "" && credentialsRef == "" {
		return nil
	}
	opt := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	return &metav1.TenantSettings{KekRef: opt(kek), BufferUrl: opt(bufferURL), CredentialsRef: opt(credentialsRef)}
}
