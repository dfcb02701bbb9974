//go:build !linux

package main

import "os/exec"

// dieWithParent has no equivalent outside Linux: a killed harness leaves the
// daemon to be stopped by hand.
func dieWithParent(*exec.Cmd) {}
