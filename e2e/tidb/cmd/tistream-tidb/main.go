// Command tistream-tidb runs an embedded TiDB as TiStream's upstream and
// checks what TiStream pulls against TiDB's own MVCC:
//
//	tistream-tidb serve --lines - | tistream upstream --store URL --meta ADDR
//	tistream-tidb workload bank|ddl|... --mysql ADDR
//	tistream-tidb check --http ADDR --pulled FILE --at R1,R2,...
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"serve":    runServe,
	"workload": runWorkload,
	"check":    runCheck,
	"truth":    runTruth,
	"lag":      runLag,
	"bench":    runBench,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: tistream-tidb serve|workload|check|truth|lag|bench [flags] (-h for each)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(commands[os.Args[1]](ctx, os.Args[2:], os.Stdout, os.Stderr))
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
