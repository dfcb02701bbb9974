package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type sseFrame struct {
	id        uint64
	eventType string
	data      string
}

// readFrames parses a text/event-stream body up to the end of a turn (an
// idle session's stream stays open) or the end of the stream.
func readFrames(t *testing.T, body io.Reader) []sseFrame {
	t.Helper()
	var frames []sseFrame
	var cur sseFrame
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.eventType != "" || cur.data != "" {
				frames = append(frames, cur)
			}
			if cur.eventType == eventStatusIdle {
				return frames
			}
			cur = sseFrame{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			require.NoError(t, err)
			cur.id = n
		case strings.HasPrefix(line, "event: "):
			cur.eventType = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			require.Empty(t, cur.data, "one data line per frame")
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	require.NoError(t, sc.Err())
	return frames
}

// fromStart asks a stream to replay from the first event (the
// Last-Event-ID extension); without it a stream is a live tail.
var fromStart = http.Header{"Last-Event-ID": {"0"}}

func (r *testRig) openStream(client *http.Client, id string, header http.Header) *http.Response {
	r.t.Helper()
	return r.openStreamAt(r.srv.URL, client, id, header)
}

// openStreamAt is openStream from the server at baseURL.
func (r *testRig) openStreamAt(baseURL string, client *http.Client, id string, header http.Header) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), "GET", baseURL+"/v1/sessions/"+id+"/events/stream", nil)
	require.NoError(r.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(r.t, err)
	require.Equal(r.t, http.StatusOK, resp.StatusCode)
	require.Equal(r.t, "text/event-stream", resp.Header.Get("Content-Type"))
	return resp
}

func TestStreamFramesAndResume(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_quick", `echo one; echo two; echo '{"type":"agent.thinking","thinking":"t"}'`)}, nil)
	id := rig.create("agent_quick", nil)

	resp := rig.openStream(http.DefaultClient, id, fromStart)
	frames := readFrames(t, resp.Body)
	resp.Body.Close()
	require.Len(t, frames, 6)
	for i, f := range frames {
		assert.Equal(t, uint64(i+1), f.id)
		var head eventHeader
		require.NoError(t, json.Unmarshal([]byte(f.data), &head))
		assert.Equal(t, head.Type, f.eventType, "the event: line names the data's type")
	}
	assert.Equal(t, []string{"user.message", "session.status_running", "agent.message", "agent.message",
		"agent.thinking", "session.status_idle"}, []string{frames[0].eventType, frames[1].eventType,
		frames[2].eventType, frames[3].eventType, frames[4].eventType, frames[5].eventType})

	// A finished session still replays on request, and Last-Event-ID resumes
	// after an event.
	resp = rig.openStream(http.DefaultClient, id, http.Header{"Last-Event-ID": {"3"}})
	resumed := readFrames(t, resp.Body)
	resp.Body.Close()
	assert.Equal(t, frames[3:], resumed)
}

// TestStreamSlowReaderDoesNotHoldTheHarness stalls a stream reader (a tiny
// receive buffer, nothing read) while the harness writes far more output
// than the connection can hold: the harness still finishes, and the reader
// then gets every event in order.
func TestStreamSlowReaderDoesNotHoldTheHarness(t *testing.T) {
	// ~700 KB of SSE. The connection holds ~30 KB: both ends' socket buffers
	// are pinned small (which also turns off the kernel's autotuning, that
	// would grow the server's send buffer to megabytes), plus the HTTP
	// server's and client's 4 KB buffers.
	const lines = 2000
	rig := newRig(t, []Agent{shAgent("agent_flood",
		`i=0; while [ $i -lt `+strconv.Itoa(lines)+` ]; do i=$((i+1)); `+
			`printf '%06d %0200d\n' $i 0; done`)}, nil)
	id := rig.create("agent_flood", nil)

	smallBuffer := func(opt int) func(_, _ string, c syscall.RawConn) error {
		return func(_, _ string, c syscall.RawConn) error {
			var err error
			_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 4096) })
			return err
		}
	}
	// Accepted connections inherit the listener's send buffer.
	ln, err := (&net.ListenConfig{Control: smallBuffer(syscall.SO_SNDBUF)}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(rig.b.SessionHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	dialer := &net.Dialer{Control: smallBuffer(syscall.SO_RCVBUF)}
	slow := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}}
	resp := rig.openStreamAt(srv.URL, slow, id, fromStart)
	defer resp.Body.Close()

	// Nothing is read from resp.Body until the session is over.
	select {
	case <-rig.b.Done(id):
	case <-time.After(waitLimit):
		t.Fatal("a stalled stream reader held up the harness")
	}
	require.Equal(t, statusIdle, mustGet(t, rig, id).Status)

	frames := readFrames(t, resp.Body)
	var texts []string
	for _, f := range frames {
		if f.eventType == eventAgentMessage {
			texts = append(texts, messageText([]byte(f.data)))
		}
	}
	require.Len(t, texts, lines)
	for i, text := range texts {
		require.True(t, strings.HasPrefix(text, fmt.Sprintf("%06d ", i+1)), "event %d out of order: %.20s", i, text)
	}
	assert.Equal(t, eventStatusIdle, frames[len(frames)-1].eventType)
}

// TestStreamFollowsLiveEvents opens the stream before the harness has
// written anything it waits for, and sees events as they are recorded.
func TestStreamFollowsLiveEvents(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript)}, nil)
	id := rig.create("agent_block", nil)
	resp := rig.openStream(http.DefaultClient, id, fromStart)
	defer resp.Body.Close()

	ready, idle := make(chan struct{}), make(chan struct{}, 1)
	framesDone := make(chan []sseFrame, 1)
	go func() {
		var frames []sseFrame
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				frames = append(frames, sseFrame{eventType: line})
			}
			if strings.Contains(sc.Text(), `"text":"ready `) {
				close(ready)
			}
			if sc.Text() == "event: "+eventStatusIdle {
				idle <- struct{}{}
			}
		}
		framesDone <- frames
	}()
	select {
	case <-ready:
	case <-time.After(waitLimit):
		t.Fatal("no live event")
	}
	_, err := rig.b.interrupt(id)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	select {
	case <-idle: // the stream stays open: the session may take another message
	case <-ctx.Done():
		t.Fatal("the stream did not follow the session to idle")
	}
	_, err = rig.client.Beta.Sessions.Delete(ctx, id, anthropic.BetaSessionDeleteParams{})
	require.NoError(t, err)
	select {
	case frames := <-framesDone:
		last := frames[len(frames)-1]
		assert.Equal(t, eventSessionDeleted, last.eventType, "the stream of a deleted session ends with session.deleted")
	case <-ctx.Done():
		t.Fatal("the stream did not end with the session")
	}
}
