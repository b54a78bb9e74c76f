package store

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel stop the test server if the test binary
// dies without stopping it (a -timeout panic).
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
