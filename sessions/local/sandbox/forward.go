package sandbox

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/internal/connlimit"
)

// ForwarderCommand is the hidden first argument that turns the sandbox0d
// binary (or a test binary that re-executes itself) into the forwarder a
// limited sandbox runs: main calls RunForwarder when it sees it.
const ForwarderCommand = "__sandbox0d-egress-forward"

// RunForwarder is the forwarder, run inside a limited sandbox as the
// parent of the harness: it listens on the loopback proxy address, relays
// every connection to the egress socket mounted from the daemon, starts the
// harness (the arguments after "--") with the same stdio and environment,
// passes termination signals on to it, and exits with its status. It is
// the only process in the sandbox that can reach the daemon's proxy, and
// the proxy decides everything; the forwarder only moves bytes.
// ProxyListenAddr is the loopback address of the forwarder inside a limited
// sandbox; the proxy variables point at it. (Declared here, not in the
// Linux-only file, because the forwarder's flags name it on every platform.)
const ProxyListenAddr = "127.0.0.1:3128"

func RunForwarder(args []string) int {
	fs := flag.NewFlagSet(ForwarderCommand, flag.ContinueOnError)
	socket := fs.String("socket", "", "egress socket")
	listen := fs.String("listen", ProxyListenAddr, "loopback address to serve")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if *socket == "" || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "sandbox0d egress forwarder: usage: --socket PATH [--listen ADDR] -- PROGRAM [ARGS…]")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox0d egress forwarder:", err)
		return 1
	}
	go func() {
		var wait time.Duration
		for {
			c, err := ln.Accept()
			if err != nil {
				// A harness holding thousands of connections runs this
				// process out of files; it must serve again once they
				// close, not stop for the rest of the turn.
				if !connlimit.Temporary(err) {
					return
				}
				wait = min(max(2*wait, 5*time.Millisecond), time.Second)
				time.Sleep(wait)
				continue
			}
			wait = 0
			go forwardConn(c, *socket)
		}
	}()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox0d egress forwarder: starting the harness:", err)
		return 127
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "sandbox0d egress forwarder:", err)
	return 1
}

func forwardConn(c net.Conn, socket string) {
	defer c.Close()
	up, err := net.Dial("unix", socket)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}
