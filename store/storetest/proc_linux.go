package storetest

import "syscall"

// procAttr kills an etcd process with the test binary that started it.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
