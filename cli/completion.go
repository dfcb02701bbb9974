package cli

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `completion bash|zsh|fish` scripts call back
// into the binary (`__complete`), which asks the daemon, over the same
// socket or address the command would use, for the ids that fit.

// completionTimeout bounds the wait at a TAB: a stopped daemon must not
// hang the shell.
const completionTimeout = 2 * time.Second

// completionPage is how many ids one TAB fetches (the newest ones).
const completionPage = "100"

// idSource lists the ids of one kind with a short description each.
type idSource struct {
	path     string
	describe func(item map[string]any) string
}

var (
	deploymentIDs = idSource{"/v1/deployments", func(it map[string]any) string { return str(it["name"]) + " (" + str(it["status"]) + ")" }}
	runIDs        = idSource{"/v1/deployment_runs", func(it map[string]any) string {
		if e, ok := it["error"].(map[string]any); ok {
			return str(it["deployment_id"]) + " " + str(e["type"])
		}
		return str(it["deployment_id"]) + " " + str(it["session_id"])
	}}
	sessionIDs = idSource{"/v1/sessions", func(it map[string]any) string { return str(it["status"]) }}
)

func str(v any) string {
	s, _ := v.(string)
	return oneLine(s)
}

// completeFirstArg completes the command's one id argument.
func (cc *commandContext) completeFirstArg(src idSource) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return cc.completeIDs(cmd, src, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFlag completes a flag's id value.
func (cc *commandContext) completeFlag(src idSource) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return cc.completeIDs(cmd, src, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func (cc *commandContext) completeIDs(cmd *cobra.Command, src idSource, prefix string) []cobra.Completion {
	client, err := cc.client(cmd)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	data, err := client.get(ctx, src.path, url.Values{"limit": {completionPage}})
	if err != nil {
		return nil
	}
	var page struct {
		Data []map[string]any `json:"data"`
	}
	if json.Unmarshal(data, &page) != nil {
		return nil
	}
	var out []cobra.Completion
	for _, it := range page.Data {
		id := str(it["id"])
		if id == "" || !strings.HasPrefix(id, prefix) {
			continue
		}
		out = append(out, cobra.CompletionWithDesc(id, src.describe(it)))
	}
	return out
}

// registerCompletions attaches the id completions to the commands and
// flags that take ids.
func (cc *commandContext) registerCompletions(root *cobra.Command) {
	args := map[string]idSource{
		"deployments get": deploymentIDs, "deployments pause": deploymentIDs, "deployments unpause": deploymentIDs,
		"deployments archive": deploymentIDs, "deployments run": deploymentIDs, "deployments update": deploymentIDs,
		"deployments runs": deploymentIDs,
		"runs get":         runIDs,
		"sessions get":     sessionIDs, "sessions events": sessionIDs, "sessions send": sessionIDs,
		"sessions interrupt": sessionIDs, "sessions archive": sessionIDs, "sessions delete": sessionIDs,
	}
	flags := map[string]idSource{"runs list": deploymentIDs, "sessions list": deploymentIDs}
	for path, src := range args {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil && cmd.Name() == strings.Fields(path)[1] {
			cmd.ValidArgsFunction = cc.completeFirstArg(src)
		}
	}
	for path, src := range flags {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil {
			_ = cmd.RegisterFlagCompletionFunc("deployment", cc.completeFlag(src))
		}
	}
}
