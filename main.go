// Command sandbox0d runs and controls the sandbox0d daemon.
package main

//go:generate go run ./internal/gendocs

import (
	"context"
	"fmt"
	"os"

	"github.com/sandbox0/sandbox0d/cli"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

func main() {
	// Inside a limited sandbox this binary relays the harness's proxy
	// connections to the daemon's egress socket.
	if len(os.Args) > 1 && os.Args[1] == sandbox.ForwarderCommand {
		os.Exit(sandbox.RunForwarder(os.Args[2:]))
	}
	if err := cli.Run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox0d:", err)
		os.Exit(1)
	}
}
