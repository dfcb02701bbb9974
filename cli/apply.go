package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/internal/deployfiles"
)

// applyRequest is the body of POST /v1/deployment_sets/{set}/plan|apply
// (the apply wire contract).
type applyRequest struct {
	Deployments []deployfiles.Document `json:"deployments"`
	Prune       bool                   `json:"prune"`
	Force       bool                   `json:"force"`
	IfMatch     string                 `json:"if_match,omitempty"`
}

func newApplyCommand(cc *commandContext) *cobra.Command {
	var (
		dir, set, ifMatch    string
		prune, dryRun, force bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f DIR",
		Short: "Make a set of deployments match a directory of YAML/JSON files, in one transaction (--dry-run shows the plan)",
		Long: `Apply reads every *.yaml, *.yml and *.json file under DIR (one deployment per
document, in the create shape, plus optional key: and paused:), asks the daemon
for the plan (create / update / unchanged / archive) and applies the whole plan
in one transaction. Tokens may be given as authorization_token_file: PATH or
authorization_token_env: NAME; they are resolved here and never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(set) == "" {
				return errors.New("--set: must not be empty (default: default)")
			}
			if dryRun && ifMatch != "" {
				return errors.New("--if-match: only applies; drop --dry-run (a dry run always shows the current plan and its hash)")
			}
			docs, err := deployfiles.DecodeDir(dir, deployfiles.Options{LookupEnv: func(name string) (string, bool) {
				v := cc.getenv(name)
				return v, v != ""
			}})
			if err != nil {
				return fmt.Errorf("-f %s: %w", dir, err)
			}
			body, err := json.Marshal(applyRequest{Deployments: docs, Prune: prune, Force: force, IfMatch: ifMatch})
			if err != nil {
				return fmt.Errorf("encode the apply request: %w", err)
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			action := "apply"
			if dryRun {
				action = "plan"
			}
			data, err := client.post(cmd.Context(), "/v1/deployment_sets/"+url.PathEscape(set)+"/"+action, body)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var p plan
			if err := decodeJSON(data, "a plan", &p); err != nil {
				return err
			}
			return writePlan(cmd.OutOrStdout(), p, planFooter{dryRun: dryRun, dir: dir, set: set, prune: prune, force: force})
		},
	}
	cmd.Flags().StringVarP(&dir, "file", "f", "", "the directory of deployment files (required)")
	cmd.Flags().StringVar(&set, "set", "default", "the deployment set the directory owns")
	cmd.Flags().BoolVar(&prune, "prune", false, "archive members of the set whose files are gone")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and its hash; change nothing")
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "apply only if the plan's hash is still this one (from --dry-run)")
	cmd.Flags().BoolVar(&force, "force", false, "let --prune archive more than half of the set, or all of it")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagDirname("file")
	return cmd
}
