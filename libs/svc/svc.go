// Package svc is the lifecycle every TiStream service follows: constructed
// without goroutines, started, serving, stopped gracefully (not serving,
// release leases, drain, stop). It also carries the settings every service
// shares: gRPC and metrics addresses, logging, and YAML config loading.
package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Service is one long-running part of the fleet.
type Service interface {
	Name() string
	// Start brings the service up and returns once it serves; background
	// work keeps running until Stop.
	Start(ctx context.Context) error
	// Stop shuts it down gracefully within ctx's deadline.
	Stop(ctx context.Context) error
	// Failed receives the service's failure after it started (a server
	// that stopped serving, a fatal error of its background work).
	Failed() <-chan error
}

// Run starts services in order, waits until ctx is cancelled (SIGTERM) or
// one of them fails, then stops them in reverse order, each within
// stopTimeout. A failure is returned: the process must not live on with a
// dead service.
func Run(ctx context.Context, log *slog.Logger, stopTimeout time.Duration, services ...Service) error {
	var started []Service
	stopAll := func() error {
		var errs []error
		for i := len(started) - 1; i >= 0; i-- {
			s := started[i]
			sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			err := s.Stop(sctx)
			cancel()
			if err != nil { // a stopped service logs it itself (the kernel's "service stopped")
				log.Error("service stop failed", "service", s.Name(), "err", err)
				errs = append(errs, fmt.Errorf("stop %s: %w", s.Name(), err))
			}
		}
		return errors.Join(errs...)
	}
	for _, s := range services {
		if err := s.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("start %s: %w", s.Name(), err), stopAll())
		}
		log.Info("service started", "service", s.Name())
		started = append(started, s)
	}
	runErr := WaitFailure(ctx, started)
	if runErr != nil {
		log.Error("a service failed; stopping", "err", runErr)
	}
	return errors.Join(runErr, stopAll())
}

// NewLogger builds the process logger: JSON or text to w at level.
func NewLogger(level, format string, w interface{ Write([]byte) (int, error) }) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// WaitFailure waits until ctx ends (nil) or one of the services fails (its
// error, naming it).
func WaitFailure(ctx context.Context, services []Service) error {
	failed := make(chan error, len(services))
	done := make(chan struct{})
	defer close(done)
	for _, s := range services {
		go func() {
			select {
			case err, ok := <-s.Failed():
				if ok {
					failed <- fmt.Errorf("%s failed: %w", s.Name(), err)
				}
			case <-done:
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}
