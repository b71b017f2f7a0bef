package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startCPUProfile starts a CPU profile written to path (nothing when path
// is empty) and returns the function that stops it; on failure it reports
// to stderr as cmd and returns false.
func startCPUProfile(path, cmd string, stderr io.Writer) (stop func(), ok bool) {
	return startRecording(path, cmd, "--cpuprofile", stderr, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace is startCPUProfile for an execution trace (go tool trace).
func startTrace(path, cmd string, stderr io.Writer) (stop func(), ok bool) {
	return startRecording(path, cmd, "--trace", stderr, trace.Start, trace.Stop)
}

// startRecording creates path and calls start on it; the function it
// returns calls end and closes the file. Failures are reported to stderr
// as cmd's flag.
func startRecording(path, cmd, flag string, stderr io.Writer, start func(io.Writer) error, end func()) (stop func(), ok bool) {
	if path == "" {
		return func() {}, true
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "tistream %s: %s: %v\n", cmd, flag, err)
		return nil, false
	}
	if err := start(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "tistream %s: %s: %v\n", cmd, flag, err)
		return nil, false
	}
	return func() {
		end()
		f.Close()
	}, true
}

// writeHeapProfile writes a heap profile to path; a failure is reported
// to stderr as cmd and otherwise ignored.
func writeHeapProfile(path, cmd string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream %s: --memprofile: %v\n", cmd, err)
	}
}
