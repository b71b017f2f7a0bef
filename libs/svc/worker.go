package svc

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

// Worker are the settings of a service that registers in etcd as a worker
// the meta-server assigns tasks to (dispatchers, sorters).
type Worker struct {
	// ID names the worker in etcd (worker key, task owner). It must be
	// unique and should be stable across restarts (a pod name).
	ID string `yaml:"id"`
	// AdvertiseAddr is the gRPC address registered for others to dial;
	// empty = the listening address (AdvertiseAddr).
	AdvertiseAddr string `yaml:"advertise_addr"`
	// LeaseTTL is the TTL of the registration's lease: a worker that stops
	// renewing it loses its tasks after this long.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// DefaultWorker is kind's default: id hostname-pid, lease 10 s.
func DefaultWorker(kind string) Worker {
	host, _ := os.Hostname()
	if host == "" {
		host = kind
	}
	return Worker{ID: fmt.Sprintf("%s-%d", host, os.Getpid()), LeaseTTL: 10 * time.Second}
}

// RegisterFlags binds the settings to flags, with w's values as defaults.
func (w *Worker) RegisterFlags(fs *flag.FlagSet, kind string) {
	fs.StringVar(&w.ID, "id", w.ID, kind+" id in etcd, unique in the fleet (default hostname-pid)")
	fs.StringVar(&w.AdvertiseAddr, "advertise-addr", w.AdvertiseAddr, "gRPC address other services dial (default: the listening address)")
	fs.DurationVar(&w.LeaseTTL, "lease-ttl", w.LeaseTTL, "TTL of the worker registration lease in etcd")
}

// Validate names every wrong setting by its flag.
func (w *Worker) Validate() error {
	var errs []error
	if w.ID == "" {
		errs = append(errs, errors.New("--id is required"))
	}
	if w.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--lease-ttl must be at least 1s, got %s", w.LeaseTTL))
	}
	return errors.Join(errs...)
}

// AdvertiseAddr is the address a server registers for others to dial: the
// configured one, else the listening address, with the host name in place
// of an unspecified (all interfaces) host.
func AdvertiseAddr(configured, listening string) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(listening)
	if err != nil {
		return listening
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	return listening
}
