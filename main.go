// Command sandbox0d runs and controls the sandbox0d daemon.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sandbox0/sandbox0d/cli"
)

func main() {
	if err := cli.Run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox0d:", err)
		os.Exit(1)
	}
}
