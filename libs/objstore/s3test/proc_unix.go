//go:build unix

package s3test

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in its own process group, so stopping it also
// stops anything it forks, and (on Linux) has the kernel kill it if the test
// binary dies without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
