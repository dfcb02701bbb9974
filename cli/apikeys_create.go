package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newAPIKeysCreateCommand(cc *commandContext) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API key; the key is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return errors.New("--name: must not be empty; name the key after who or what uses it")
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			body, err := json.Marshal(map[string]string{"name": name})
			if err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			data, err := client.post(cmd.Context(), "/admin/apikeys", body)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var key apiKey
			if err := decodeJSON(data, "an API key", &key); err != nil {
				return err
			}
			if key.Key == "" {
				return fmt.Errorf("the daemon created API key %s but returned no key value", key.ID)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Created API key %s (%s).\n\n", oneLine(key.ID), oneLine(key.Name))
			fmt.Fprintf(w, "    %s\n\n", key.Key)
			_, err = fmt.Fprintln(w, "Store it now: it cannot be shown again. Clients send it as x-api-key (or Authorization: Bearer).")
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the key is for, e.g. ci or laptop (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
