package main

import (
	"context"
	"fmt"
	"os"
	"time"

	metering "github.com/tistream/tistream/libs/usage"
)

// usageFlushEnv overrides the usage flush interval (tests; default
// metering.DefaultFlushInterval).
const usageFlushEnv = "TISTREAM_USAGE_FLUSH_INTERVAL"

// startUsageFlusher writes the process's tenant usage to the pool every
// interval (docs/tenants.md, "Metering") until the returned function is
// called, which flushes once more and waits. Without a pool nothing is
// written (the counters still export).
func startUsageFlusher(e env, service string) (stop func()) {
	if e.pool == nil {
		return func() {}
	}
	interval := metering.DefaultFlushInterval
	if v := os.Getenv(usageFlushEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			interval = d
		} else {
			e.log.Warn("ignoring a bad usage flush interval", "env", usageFlushEnv, "value", v)
		}
	}
	// The incarnation: a restarted process never reuses its keys.
	instance := fmt.Sprintf("%s-%d-%d", service, time.Now().UnixMilli(), os.Getpid())
	f := metering.NewFlusher(e.usage, e.pool, instance, e.log.With("component", "usage"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, interval, 10*time.Second)
	}()
	return func() {
		cancel()
		<-done
	}
}
