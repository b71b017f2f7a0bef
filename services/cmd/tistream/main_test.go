package main

import (
	"os"
	"testing"
)

// asCommand, set in a test's environment, makes this package's test
// binary run as the tistream command: a parent command that starts
// os.Executable() (bench, its children) can then be tested whole.
const asCommand = "TISTREAM_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
