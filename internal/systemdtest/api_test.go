package systemdtest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"
)

// messages joins the text of a session's agent messages and errors.
func messages(t *testing.T, api anthropic.Client, id string) string {
	t.Helper()
	var lines []string
	for _, ev := range events(t, api, id) {
		if ev.Type == "agent.message" {
			for _, block := range ev.AsAgentMessage().Content {
				lines = append(lines, block.Text)
			}
		}
		if ev.Type == "session.error" {
			lines = append(lines, "session.error: "+ev.Error.Message)
		}
	}
	return strings.Join(lines, "\n")
}

func send(t *testing.T, api anthropic.Client, id, text string) {
	t.Helper()
	_, err := api.Beta.Sessions.Events.Send(context.Background(), id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: text}}}}}}})
	require.NoError(t, err)
}

// awaitStop follows the session's event stream from its first event
// (Last-Event-ID 0: the stream is a live tail otherwise) to its first stop
// (idle or terminated).
func awaitStop(t *testing.T, api anthropic.Client, id string) anthropic.BetaManagedAgentsStreamSessionEventsUnion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream := api.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{}, option.WithHeader("Last-Event-ID", "0"))
	defer stream.Close()
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "session.status_idle" || ev.Type == "session.status_terminated" {
			return ev
		}
	}
	t.Fatalf("the event stream of %s ended before the session stopped: %v", id, stream.Err())
	return anthropic.BetaManagedAgentsStreamSessionEventsUnion{}
}

func events(t *testing.T, api anthropic.Client, id string) []anthropic.BetaManagedAgentsSessionEventUnion {
	t.Helper()
	var out []anthropic.BetaManagedAgentsSessionEventUnion
	pager := api.Beta.Sessions.Events.ListAutoPaging(context.Background(), id, anthropic.BetaSessionEventListParams{})
	for pager.Next() {
		out = append(out, pager.Current())
	}
	require.NoError(t, pager.Err())
	return out
}

// client talks to the daemon's Unix socket (from the host, through the
// container's /proc/<pid>/root).
func client(sock string) anthropic.Client {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	return anthropic.NewClient(option.WithBaseURL("http://sandbox0d"), option.WithHTTPClient(hc),
		option.WithAPIKey("unused"), option.WithMaxRetries(0))
}
