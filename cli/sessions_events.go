package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// eventsPageSize is the API's largest events page.
const eventsPageSize = 1000

// maxSSELine bounds one line of the stream (an event's JSON).
const maxSSELine = 4 << 20

func newSessionsEventsCommand(cc *commandContext) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "events ID [-f]",
		Short: "Print a session's events, one line each; -f follows them until the session stops (--json: raw events)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("session", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			if follow {
				return followSession(cmd.Context(), client, cmd.OutOrStdout(), args[0], cc.json)
			}
			_, err = printEventHistory(cmd.Context(), client, cmd.OutOrStdout(), args[0], cc.json)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the event stream until the session goes idle or terminates (or Ctrl-C)")
	return cmd
}

// eventHistory is what printEventHistory printed.
type eventHistory struct {
	seen    map[string]bool
	stopped bool // the last event says the session stopped working
}

// printEventHistory prints every event so far, oldest first.
func printEventHistory(ctx context.Context, c *apiClient, w io.Writer, id string, asJSON bool) (eventHistory, error) {
	h := eventHistory{seen: map[string]bool{}}
	list, err := collectPages(ctx, c, sessionPath(id, "events"), nil, 0, eventsPageSize)
	if err != nil {
		return h, err
	}
	for _, raw := range list.Data {
		ev, err := writeEvent(w, raw, asJSON)
		if err != nil {
			return h, err
		}
		h.seen[ev.ID] = true
		h.stopped = endsFollow(ev)
	}
	return h, nil
}

// followSession prints the events so far, then follows the stream and
// returns once the session stops working (idle or terminated), the stream
// ends, or ctx is done (Ctrl-C). Events the stream replays are printed once.
func followSession(ctx context.Context, c *apiClient, w io.Writer, id string, asJSON bool) error {
	data, err := c.get(ctx, sessionPath(id), nil)
	if err != nil {
		return err
	}
	var s session
	if err := decodeJSON(data, "a session", &s); err != nil {
		return err
	}
	if s.Status == "terminated" {
		_, err := printEventHistory(ctx, c, w, id, asJSON)
		return err // nothing more will happen
	}
	// Subscribe first, then read the history: the stream is a live tail
	// (local and upstream alike) that starts where the session was when it
	// opened, so an event emitted in between is in both, and printed once.
	resp, err := c.stream(ctx, sessionPath(id, "events", "stream"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	history, err := printEventHistory(ctx, c, w, id, asJSON)
	if err != nil || history.stopped {
		return err
	}
	seen := history.seen
	err = readSSE(resp.Body, func(data []byte) (bool, error) {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(data, &head) == nil && head.ID != "" && seen[head.ID] {
			return false, nil
		}
		ev, err := writeEvent(w, data, asJSON)
		if err != nil {
			return true, err
		}
		seen[ev.ID] = true
		return endsFollow(ev), nil
	})
	if ctx.Err() != nil {
		return nil // Ctrl-C ends a follow normally
	}
	return err
}

// readSSE calls onData with the data of each server-sent event until it
// returns done, the stream ends, or reading fails.
func readSSE(r io.Reader, onData func([]byte) (done bool, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSSELine)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) == 0 {
				continue
			}
			payload := []byte(strings.Join(data, "\n"))
			data = data[:0]
			done, err := onData(payload)
			if err != nil || done {
				return err
			}
		case strings.HasPrefix(line, ":"): // comment, e.g. keepalive
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	return nil
}
