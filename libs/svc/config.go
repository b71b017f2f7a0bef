package svc

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tistream/tistream/libs/offheap"
)

// Common are the settings every service has.
type Common struct {
	GRPCAddr    string        `yaml:"grpc_addr"`
	HTTPAddr    string        `yaml:"http_addr"`
	LogLevel    string        `yaml:"log_level"`
	LogFormat   string        `yaml:"log_format"`
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// Pprof serves /debug/pprof on the HTTP address (off by default:
	// profiles and heap dumps are for operators, not for whoever reaches
	// the port).
	Pprof bool `yaml:"pprof"`
	// MaxRecvBytes bounds one message a client sends (0 = 128 MiB, what
	// an internal Ingest batch may need); public services set a few MiB.
	MaxRecvBytes int `yaml:"max_recv_bytes"`
	// MaxConcurrentStreams bounds the calls in flight on one client
	// connection (0 = 1024).
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// GCMaxHeadroom bounds the heap the Go collector lets grow past the
	// live heap, in bytes (package gcpace): after every collection GOGC is
	// set so the next one comes within this much allocation, never below
	// 25 % of the live heap. Fresh memory costs a page fault a page, and a
	// sorter's live heap swings by the rows between flush rounds. 0 = the
	// default, 128 MiB; negative = leave GOGC alone. Process-wide: the
	// first service of a process to start sets it.
	GCMaxHeadroom int64 `yaml:"gc_max_headroom"`
	// HugePageHeap: at start, this many bytes of the process's Go heap
	// growth are advised for transparent huge pages (offheap.HugeHeap):
	// one page fault per 2 MiB instead of 512, for a sorter's row indexes
	// and publications, an api-server's decoded rows. 0 = the default,
	// 1 GiB (address space: resident only as used); negative = off. The
	// price is resident memory (docs/operations.md). Process-wide: the
	// first service of a process to start sets it.
	HugePageHeap int64 `yaml:"huge_page_heap"`
	// HugePages: whether the process's large buffers (the sorter's arena,
	// publication sections, read buffers, and the Go heap's growth above)
	// take transparent huge pages: "on", "off", or "auto" (the default:
	// measured at start, huge pages only where 4 KiB page faults are
	// expensive and 2 MiB ones cheaper; offheap.Decide). Process-wide: the
	// first service of a process to start sets it.
	HugePages string `yaml:"huge_pages"`
	// Security: TLS, certificates, tokens (security.go).
	Security Security `yaml:",inline"`
}

// RegisterFlags binds the settings to flags named prefix+name, with c's
// values as defaults.
func (c *Common) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&c.GRPCAddr, prefix+"grpc-addr", c.GRPCAddr, "gRPC listen address")
	fs.StringVar(&c.HTTPAddr, prefix+"http-addr", c.HTTPAddr, "HTTP listen address for /metrics, /healthz and /readyz (and /debug/pprof with --pprof)")
	fs.BoolVar(&c.Pprof, prefix+"pprof", c.Pprof, "serve /debug/pprof on the HTTP address")
	fs.IntVar(&c.MaxRecvBytes, prefix+"max-recv-bytes", c.MaxRecvBytes, "largest message a client may send (0 = 128 MiB); larger ones are refused with RESOURCE_EXHAUSTED")
	fs.Func(prefix+"max-concurrent-streams", "calls in flight on one client connection at most (default 1024)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		c.MaxConcurrentStreams = uint32(n)
		return err
	})
	fs.Int64Var(&c.GCMaxHeadroom, prefix+"gc-max-headroom", c.GCMaxHeadroom, "bytes the Go heap may grow past its live data before the next collection (0 = 128 MiB; -1 = GOGC alone); process-wide, set by the first service to start")
	fs.Int64Var(&c.HugePageHeap, prefix+"huge-page-heap", c.HugePageHeap, "bytes of the Go heap's growth advised for transparent huge pages at start: fewer page faults, more resident memory (0 = 1 GiB; -1 = off); process-wide, set by the first service to start")
	fs.StringVar(&c.HugePages, prefix+"huge-pages", c.HugePages, "transparent huge pages for large buffers: auto (measure page faults at start, the default), on, off; process-wide, set by the first service to start")
	c.Security.RegisterFlags(fs, prefix)
	fs.StringVar(&c.LogLevel, prefix+"log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, prefix+"log-format", c.LogFormat, "log format: text or json")
	fs.DurationVar(&c.StopTimeout, prefix+"stop-timeout", c.StopTimeout, "how long a graceful stop may take before it is forced")
}

// Validate names the first wrong setting.
func (c *Common) Validate(prefix string) error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, fmt.Errorf("--%sgrpc-addr is required", prefix))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, fmt.Errorf("--%shttp-addr is required", prefix))
	}
	if c.MaxRecvBytes < 0 {
		errs = append(errs, fmt.Errorf("--%smax-recv-bytes must not be negative", prefix))
	}
	if c.StopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--%sstop-timeout must be positive", prefix))
	}
	if _, err := offheap.ParsePageMode(c.HugePages); err != nil {
		errs = append(errs, fmt.Errorf("--%shuge-pages: %w", prefix, err))
	}
	if _, err := NewLogger(c.LogLevel, c.LogFormat, os.Stderr); err != nil {
		errs = append(errs, fmt.Errorf("--%slog-level/--%slog-format: %w", prefix, prefix, err))
	}
	if err := c.Security.Validate(prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LoadYAML reads a YAML config file strictly into dst: unknown keys are
// errors naming the key and line, so a typo never silently keeps a default.
func LoadYAML(path string, dst any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil // an empty file keeps every default
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// ParseWithConfig parses args twice around an optional --config file:
// defaults, then the file, then flags given on the command line win.
func ParseWithConfig(fs *flag.FlagSet, args []string, configFlag *string, dst any) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFlag == "" {
		return nil
	}
	if err := LoadYAML(*configFlag, dst); err != nil {
		return err
	}
	return fs.Parse(args)
}
