package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// The sessions commands speak only the wire API (/v1/sessions…), so they
// work for local sessions and, through the daemon's proxy, for upstream ones.

// sessionsPageSize is the API's largest sessions page.
const sessionsPageSize = 100

func newSessionsCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sessions",
		Aliases: []string{"session"},
		Short:   "List, inspect, follow and steer sessions",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(
		newSessionsListCommand(cc),
		newSessionsGetCommand(cc),
		newSessionsEventsCommand(cc),
		newSessionsSendCommand(cc),
		newSessionsInterruptCommand(cc),
		newSessionsArchiveCommand(cc),
		newSessionsDeleteCommand(cc),
	)
	return cmd
}

// sessionPath is the API path of one session, plus an optional action.
func sessionPath(id string, action ...string) string {
	return strings.Join(append([]string{"/v1/sessions/" + url.PathEscape(id)}, action...), "/")
}

func newSessionsListCommand(cc *commandContext) *cobra.Command {
	var (
		deploymentID, status, agentID string
		all                           bool
		limit                         int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sessions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			switch status {
			case "", "idle", "running", "rescheduling", "terminated":
			default:
				return fmt.Errorf("--status: %q is not one of idle, running, rescheduling, terminated", status)
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			query := url.Values{}
			if deploymentID != "" {
				query.Set("deployment_id", deploymentID)
			}
			if status != "" {
				query.Set("statuses[]", status)
			}
			if agentID != "" {
				query.Set("agent_id", agentID)
			}
			if all {
				query.Set("include_archived", "true")
			}
			list, err := collectPages(cmd.Context(), client, "/v1/sessions", query, limit, sessionsPageSize)
			if err != nil {
				return err
			}
			if cc.json {
				return printListingJSON(cmd.OutOrStdout(), list)
			}
			items, err := decodeItems[session](list, "session")
			if err != nil {
				return err
			}
			return writeSessionTable(cmd.OutOrStdout(), items, cc.now())
		},
	}
	cmd.Flags().StringVar(&deploymentID, "deployment", "", "only sessions created by this deployment's runs")
	cmd.Flags().StringVar(&status, "status", "", "only sessions in this status: idle, running, rescheduling or terminated")
	cmd.Flags().StringVar(&agentID, "agent", "", "only sessions of this agent id")
	cmd.Flags().BoolVar(&all, "all", false, "include archived sessions")
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many (0: all)")
	return cmd
}

func newSessionsGetCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one session",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("session", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), sessionPath(args[0]), nil)
			if err != nil {
				return err
			}
			return cc.printSession(cmd.OutOrStdout(), data)
		},
	}
}

func (cc *commandContext) printSession(w io.Writer, data []byte) error {
	if cc.json {
		return printJSON(w, data)
	}
	var s session
	if err := decodeJSON(data, "a session", &s); err != nil {
		return err
	}
	return writeSessionBlock(w, s, cc.now())
}

// sendEvents posts events to a session.
func sendEvents(cmd *cobra.Command, cc *commandContext, id string, events ...any) ([]byte, error) {
	if err := requireID("session", id); err != nil {
		return nil, err
	}
	client, err := cc.client(cmd)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return nil, err
	}
	return client.post(cmd.Context(), sessionPath(id, "events"), body)
}

func newSessionsSendCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "send ID TEXT",
		Short: "Send a user.message to a session (a new turn)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[1]) == "" {
				return fmt.Errorf("TEXT: must not be empty")
			}
			data, err := sendEvents(cmd, cc, args[0], map[string]any{
				"type": "user.message", "content": []any{map[string]any{"type": "text", "text": args[1]}},
			})
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Sent a user.message to %s.\n", oneLine(args[0]))
			return err
		},
	}
}

func newSessionsInterruptCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "interrupt ID",
		Short: "Interrupt a session's running turn (user.interrupt)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := sendEvents(cmd, cc, args[0], map[string]any{"type": "user.interrupt"})
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Sent a user.interrupt to %s.\n", oneLine(args[0]))
			return err
		},
	}
}

func newSessionsArchiveCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "archive ID",
		Short: "Archive a session that has ended",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("session", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), sessionPath(args[0], "archive"), nil)
			if err != nil {
				return err
			}
			return cc.printSession(cmd.OutOrStdout(), data)
		},
	}
}

func newSessionsDeleteCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a session that has ended, with its events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("session", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.doJSON(cmd.Context(), http.MethodDelete, sessionPath(args[0]), nil, nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted session %s.\n", oneLine(args[0]))
			return err
		},
	}
}
