package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the daemon die with the harness even if the harness
// is killed.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
