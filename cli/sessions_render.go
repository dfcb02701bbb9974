package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// session is the part of a session object the tables show.
type session struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Agent         agentRef          `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	DeploymentID  *string           `json:"deployment_id"`
	Metadata      map[string]string `json:"metadata"`
	Title         *string           `json:"title"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	ArchivedAt    *time.Time        `json:"archived_at"`
	Usage         struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
	Stats struct {
		ActiveSeconds float64 `json:"active_seconds"`
	} `json:"stats"`
	// Node is set by a cluster (issue 26): the node that owns the session.
	Node string `json:"node"`
}

// deployment names the deployment that created the session: the field, or
// the metadata the upstream backend tags its sessions with.
func (s session) deployment() string {
	if s.DeploymentID != nil && *s.DeploymentID != "" {
		return *s.DeploymentID
	}
	if id := s.Metadata["sandbox0d.deployment_id"]; id != "" {
		return id
	}
	return "-"
}

func (s session) statusText() string {
	if s.ArchivedAt != nil {
		return oneLine(s.Status) + " (archived)"
	}
	return oneLine(s.Status)
}

func writeSessionTable(w io.Writer, items []session, now time.Time) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "No sessions.")
		return err
	}
	tw := newTable(w)
	// A cluster names each session's node (issue 26); one box has none.
	clustered := false
	for _, s := range items {
		clustered = clustered || s.Node != ""
	}
	if clustered {
		writeRow(tw, "ID", "STATUS", "NODE", "AGENT", "DEPLOYMENT", "CREATED", "UPDATED")
	} else {
		writeRow(tw, "ID", "STATUS", "AGENT", "DEPLOYMENT", "CREATED", "UPDATED")
	}
	for _, s := range items {
		cells := []string{oneLine(s.ID), s.statusText()}
		if clustered {
			cells = append(cells, oneLine(s.Node))
		}
		cells = append(cells, fmt.Sprintf("%s v%d", oneLine(s.Agent.ID), s.Agent.Version),
			oneLine(s.deployment()), relativeTime(s.CreatedAt, now), relativeTime(s.UpdatedAt, now))
		writeRow(tw, cells...)
	}
	return tw.Flush()
}

func writeSessionBlock(w io.Writer, s session, now time.Time) error {
	b := &block{}
	b.add("ID", oneLine(s.ID))
	b.add("Status", s.statusText())
	if s.Title != nil && *s.Title != "" {
		b.add("Title", oneLine(*s.Title))
	}
	b.add("Agent", fmt.Sprintf("%s (version %d)", oneLine(s.Agent.ID), s.Agent.Version))
	b.add("Environment", oneLine(s.EnvironmentID))
	b.add("Deployment", oneLine(s.deployment()))
	if run := s.Metadata["sandbox0d.deployment_run_id"]; run != "" {
		b.add("Run", oneLine(run))
	}
	b.add("Created", utcShort(s.CreatedAt)+" ("+relativeTime(s.CreatedAt, now)+")")
	b.add("Updated", utcShort(s.UpdatedAt)+" ("+relativeTime(s.UpdatedAt, now)+")")
	if s.ArchivedAt != nil {
		b.add("Archived", utcShort(*s.ArchivedAt))
	}
	b.add("Active", compactDuration(time.Duration(s.Stats.ActiveSeconds*float64(time.Second)).Round(time.Second)))
	b.add("Tokens", fmt.Sprintf("%d in, %d out", s.Usage.InputTokens, s.Usage.OutputTokens))
	return b.write(w)
}

// sessionEvent is the part of an event one line shows.
type sessionEvent struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	ProcessedAt time.Time `json:"processed_at"`
	Content     []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	Name       string `json:"name"`
	StopReason *struct {
		Type string `json:"type"`
	} `json:"stop_reason"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// maxEventTextWidth keeps one event on one terminal line or two.
const maxEventTextWidth = 160

// eventLine is one readable line: time, type, and the text, tool name,
// stop reason or error the event carries.
func eventLine(ev sessionEvent) string {
	var detail string
	switch {
	case ev.Name != "": // agent.tool_use, agent.mcp_tool_use, agent.custom_tool_use
		detail = ev.Name
	case ev.Error != nil:
		detail = strings.TrimSpace(ev.Error.Type + ": " + ev.Error.Message)
	case ev.StopReason != nil:
		detail = "(" + ev.StopReason.Type + ")"
	default:
		var texts []string
		for _, c := range ev.Content {
			if c.Type == "text" && c.Text != "" {
				texts = append(texts, c.Text)
			}
		}
		detail = strings.Join(texts, " ")
	}
	stamp := "-"
	if !ev.ProcessedAt.IsZero() {
		stamp = ev.ProcessedAt.UTC().Format("2006-01-02 15:04:05")
	}
	line := stamp + "  " + oneLine(ev.Type)
	if detail = cell(detail, maxEventTextWidth); detail != "" {
		line += "  " + detail
	}
	return line
}

// endsFollow reports whether an event means the session stopped working:
// it went idle (other than to wait for the client) or terminated.
func endsFollow(ev sessionEvent) bool {
	switch ev.Type {
	case "session.status_terminated", "session.deleted":
		return true
	case "session.status_idle":
		return ev.StopReason == nil || ev.StopReason.Type != "requires_action"
	}
	return false
}

// writeEvent prints one event: the raw JSON object with --json, else a line.
func writeEvent(w io.Writer, raw json.RawMessage, asJSON bool) (sessionEvent, error) {
	var ev sessionEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("the daemon sent an event that is not a JSON object: %w", err)
	}
	var err error
	if asJSON {
		_, err = fmt.Fprintf(w, "%s\n", compactJSON(raw))
	} else {
		_, err = fmt.Fprintln(w, eventLine(ev))
	}
	return ev, err
}

func compactJSON(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}
