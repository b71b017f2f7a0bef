package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// startCPUProfile starts a CPU profile written to path (nothing when path
// is empty) and returns the function that stops it; on failure it reports
// to stderr as cmd and returns false.
func startCPUProfile(path, cmd string, stderr io.Writer) (stop func(), ok bool) {
	if path == "" {
		return func() {}, true
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "tistream %s: --cpuprofile: %v\n", cmd, err)
		return nil, false
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "tistream %s: --cpuprofile: %v\n", cmd, err)
		return nil, false
	}
	return func() {
		pprof.StopCPUProfile()
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
