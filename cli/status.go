package cli

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// newStatusCommand prints the daemon's /readyz: ready or not, and each
// check, the sandbox local harnesses run in included.
func newStatusCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon is ready and its checks (store, scheduler, the local sandbox in force)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, code, err := client.readyz(cmd)
			if err != nil {
				return err
			}
			if cc.json {
				if err := printJSON(cmd.OutOrStdout(), data); err != nil {
					return err
				}
			} else {
				var ready struct {
					Status string            `json:"status"`
					Checks map[string]string `json:"checks"`
				}
				if err := decodeJSON(data, "the readiness checks", &ready); err != nil {
					return err
				}
				var b block
				b.add("Status", ready.Status)
				names := make([]string, 0, len(ready.Checks))
				for name := range ready.Checks {
					names = append(names, name)
				}
				slices.Sort(names)
				for _, name := range names {
					b.add(strings.ToUpper(name[:1])+name[1:], ready.Checks[name])
				}
				if err := b.write(cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			if code != http.StatusOK {
				return fmt.Errorf("the daemon at %s is not ready (%d %s): see the checks above", client.where(), code, http.StatusText(code))
			}
			return nil
		},
	}
}

// readyz fetches /readyz, whose 503 carries the checks that failed, so
// the body is returned whatever the status.
func (c *apiClient) readyz(cmd *cobra.Command) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.base+"/readyz", nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot reach sandbox0d at %s: %w (is the daemon running? see --config, --socket and --addr)", c.where(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read /readyz from %s: %w", c.where(), err)
	}
	return data, resp.StatusCode, nil
}
