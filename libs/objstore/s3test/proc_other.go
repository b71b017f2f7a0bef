//go:build unix && !linux

package s3test

import "syscall"

// setDeathSignal has nothing to set where there is no PR_SET_PDEATHSIG.
func setDeathSignal(*syscall.SysProcAttr) {}
