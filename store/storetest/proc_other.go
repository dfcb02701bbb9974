//go:build !linux

package storetest

import "syscall"

// procAttr: without Pdeathsig, Stop (t.Cleanup) ends the processes.
func procAttr() *syscall.SysProcAttr { return nil }
