// Package cli holds the sandbox0d subcommands: `serve` runs the daemon; most
// others talk to a running daemon over its socket or TCP; `cron next`,
// `keys generate`, `keys rotate --offline` and `compact` work offline. Each
// command is one file with its own flags; main only maps errors to exit codes.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/sandbox0/sandbox0d/daemon"
)

func newServeCommand() *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sandbox0d daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			configFile, _ := cmd.Flags().GetString("config")
			cfg, err := daemon.LoadConfig(v, configFile)
			if err != nil {
				return err
			}
			log := daemon.NewLogger(os.Stderr, cfg.Log)
			for _, w := range cfg.Warnings {
				log.Warn(w)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			d, err := daemon.New(cfg, log, daemon.Options{})
			if err != nil {
				return err
			}
			// SIGHUP reloads what can change safely (log level, API keys, retention).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					next, err := daemon.LoadConfig(v, configFile)
					if err == nil {
						err = d.Reload(next)
					}
					if err != nil {
						log.Error("reload failed; keeping the running configuration", "error", err)
					}
				}
			}()
			// A second signal while draining exits at once.
			go func() {
				<-ctx.Done()
				stop()
				again := make(chan os.Signal, 1)
				signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
				<-again
				fmt.Fprintln(os.Stderr, "second signal: exiting without draining")
				os.Exit(130)
			}()
			return d.Run(ctx)
		},
	}
	daemon.BindServeFlags(cmd.Flags(), v)
	return cmd
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	return newRootWith(defaultClientDeps())
}

func newRootWith(deps clientDeps) *cobra.Command {
	root := &cobra.Command{
		Use:           "sandbox0d",
		Short:         "Self-hosted daemon for Managed Agents deployments",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newVersionCommand(), newConfigCommand(), newDocsCommand())
	registerClientCommands(root, deps)
	return root
}

// Run executes the command line.
func Run(ctx context.Context, args []string) error {
	root := NewRoot()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
