package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
)

// newKeysForgetCommand is the offline way out when the daemon refuses to
// start because no identity opens some stored tokens (a backup restored
// after a rotation, a lost identity file).
func newKeysForgetCommand() *cobra.Command {
	var (
		dataDir, identityFile string
		extra                 []string
		dryRun                bool
	)
	cmd := &cobra.Command{
		Use:   "forget-unopenable --data-dir DIR",
		Short: "Offline: drop the stored tokens no identity can open (the deployments and resources stay), so the daemon starts again",
		Long: "With the daemon stopped, list every deployment resource whose sealed token no identity\n" +
			"opens (the identity file, plus any --also-identity files such as retired identities)\n" +
			"and drop just those tokens. The deployments and their resources stay: a later run\n" +
			"clones without a token or fails visibly; set the token again with deployments update.\n" +
			"Everything else is left as it was. --dry-run only lists.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return fmt.Errorf("--data-dir: required (the stopped daemon's data directory)")
			}
			forgotten, err := daemon.ForgetUnopenableOffline(dataDir, identityFile, extra, dryRun)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(forgotten) == 0 {
				_, err := fmt.Fprintln(out, "Every stored token opens with the identity; nothing to forget.")
				return err
			}
			tw := newTable(out)
			writeRow(tw, "DEPLOYMENT", "NAME", "RESOURCE", "URL")
			for _, f := range forgotten {
				if f.ResourceType == daemon.VaultCredentialResource {
					// A vault credential created through the API: deleted
					// (nothing is left of it without its secret).
					writeRow(tw, oneLine(f.DeploymentID), cell(f.DeploymentName, maxNameWidth),
						"credential "+oneLine(f.URL), "(create it again: vaults.credentials.create)")
					continue
				}
				writeRow(tw, oneLine(f.DeploymentID), cell(f.DeploymentName, maxNameWidth),
					fmt.Sprintf("resources[%d] %s", f.Position, oneLine(f.ResourceType)), oneLine(f.URL))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			n := len(forgotten)
			if dryRun {
				_, err = fmt.Fprintf(out, "%d %s no identity opens; nothing changed (--dry-run).\n", n, plural(n, "token", "tokens"))
				return err
			}
			_, err = fmt.Fprintf(out, "Dropped %d %s no identity opens; the deployments and resources are kept. "+
				"Set the tokens again with `sandbox0d deployments update`.\n", n, plural(n, "token", "tokens"))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory of the stopped daemon (required)")
	cmd.Flags().StringVar(&identityFile, "identity-file", "", "age identity file (default as the daemon's: <data-dir>/keys/identity.age.txt or the systemd credential)")
	cmd.Flags().StringArrayVar(&extra, "also-identity", nil, "another identity file whose identities may open tokens (e.g. a retired one); repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list the tokens that would be dropped")
	return cmd
}
