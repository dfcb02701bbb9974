package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the daemon's configuration keys",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "defaults",
		Short: "Print every config key with its default as commented YAML (a starting config file)",
		Long: "Print every config key with the default this host would use, each under a comment giving\n" +
			"its meaning. The output loads back as the defaults: sandbox0d config defaults > config.yaml.\n" +
			"The full reference is docs/configuration.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := daemon.DefaultsYAML()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	})
	return cmd
}
