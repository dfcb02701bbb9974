package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/sandbox0/sandbox0d/daemon"
)

// newMigrateCommand copies the shared state between the engines (issue 25).
func newMigrateCommand(cc *commandContext) *cobra.Command {
	var req daemon.MigrateRequest
	var dataDir string
	cmd := &cobra.Command{
		Use:   "migrate --to etcd|bbolt",
		Short: "Copy a stopped daemon's bbolt file into an empty etcd prefix, or an etcd prefix into a new bbolt file",
		Long: "Grow a single box into a cluster, or go back. Reads data_dir and store.etcd.* from the daemon's\n" +
			"config (--config, as serve does; store.type is not consulted).\n\n" +
			"--to etcd copies data_dir/sandbox0d.db (or --file) into store.etcd.prefix, which must hold no\n" +
			"data. --to bbolt copies store.etcd.prefix into --file, which must not exist yet, together with\n" +
			"this node's own sessions from data_dir/sandbox0d.db when that file exists (--local-from - leaves\n" +
			"them out). The copy is raw (documents, indexes, the cursor secret, sealed secrets as ciphertext),\n" +
			"in transactions within store.etcd.max_txn_ops, and verified bucket by bucket (key count,\n" +
			"sequence, SHA-256 of the contents). It refuses while a daemon holds the bbolt file, or while any\n" +
			"node holds a lease on the prefix. The source is never changed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.LoadConfig(viper.New(), cc.config)
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			return daemon.Migrate(cfg, req, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&req.To, "to", "", "etcd or bbolt (required)")
	cmd.Flags().StringVar(&req.File, "file", "", "to etcd: the bbolt file to copy (default data_dir/sandbox0d.db); to bbolt: the new file to write (required)")
	cmd.Flags().StringVar(&req.LocalFrom, "local-from", "", "to bbolt: the node's own file whose local sessions come along (default data_dir/sandbox0d.db if it exists; - for none)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (default: data_dir of the config)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
