package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// The live transcript. The session backend's stream is a live tail (it
// sends what is recorded after it opens), so this follows the official
// pattern for missing nothing: open the stream first, then list the
// history, send what came after the page's last event, and relay the
// stream skipping the ids already sent. The stream ends when the session
// goes idle, terminates or is deleted; the browser then gets the fresh
// status and usage and closes. SSE ids are event ids, so a browser that
// reconnects resumes after the last event it has (Last-Event-ID).

func (c *Console) sessionStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if c.cfg.Sessions == nil {
		http.Error(w, "this daemon's session backend serves no sessions", http.StatusNotFound)
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	// 1. Open the backend's stream in process.
	pr, pw := io.Pipe()
	sw := &pipeWriter{header: http.Header{}, w: pw, started: make(chan struct{})}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sessionPath(id, "/events/stream"), nil)
	if err != nil {
		http.Error(w, "bad session id", http.StatusBadRequest)
		return
	}
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Accept", "text/event-stream")
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			// In a cluster the handler may be a reverse proxy to the node
			// that owns the session; when this page goes away its copy
			// fails and it aborts with http.ErrAbortHandler, which the
			// server would recover on its own goroutine but this is not
			// one. Anything else is a real panic.
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				panic(p)
			}
			sw.start(http.StatusOK)
			_ = pw.Close()
		}()
		c.cfg.Sessions.ServeHTTP(sw, req)
	}()
	// The backend's handler ends with this request: its context is
	// cancelled and its next write fails on the closed pipe.
	defer func() { cancel(); _ = pr.Close(); <-done }()
	select {
	case <-sw.started:
	case <-ctx.Done():
		return
	}
	if sw.status != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(pr, 64<<10))
		http.Error(w, apiMessage(sw.status, body), sw.status)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	now := c.cfg.Service.Now()
	out := &sseOut{w: w, rc: rc, c: c}

	// 2. The history after the page's last event.
	events, herr := c.history(ctx, id)
	if herr != "" {
		out.end(ctx, id, herr)
		return
	}
	start := 0
	if after != "" {
		for i, raw := range events {
			if eventID(raw) == after {
				start = i + 1
				break
			}
		}
	}
	seen := map[string]bool{}
	for _, raw := range events[start:] {
		ev := newEventView(raw, now)
		seen[ev.ID] = true
		if !out.event(ev) {
			return
		}
	}
	if out.finished {
		out.end(ctx, id, "")
		return
	}

	// 3. The live tail, without what the history already sent.
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case strings.HasPrefix(line, ":"):
			if !out.comment() {
				return
			}
		case line == "":
			if data.Len() == 0 {
				continue
			}
			raw := json.RawMessage(data.String())
			data.Reset()
			if evID := eventID(raw); evID != "" && seen[evID] {
				continue
			}
			if !out.event(newEventView(raw, c.cfg.Service.Now())) {
				return
			}
			if out.finished {
				out.end(ctx, id, "")
				return
			}
		}
	}
	out.end(ctx, id, "")
}

func eventID(raw json.RawMessage) string {
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.ID
}

// sseOut writes frames to the browser.
type sseOut struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	c        *Console
	finished bool // the last status event ended the turn or the session
}

func (o *sseOut) frame(id, event, html string) bool {
	var b strings.Builder
	if id != "" && !strings.ContainsAny(id, "\r\n") {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	fmt.Fprintf(&b, "event: %s\n", event)
	for line := range strings.SplitSeq(html, "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimRight(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(o.w, b.String()); err != nil {
		return false
	}
	return o.rc.Flush() == nil
}

func (o *sseOut) comment() bool {
	if _, err := io.WriteString(o.w, ": keepalive\n\n"); err != nil {
		return false
	}
	return o.rc.Flush() == nil
}

func (o *sseOut) event(ev eventView) bool {
	switch ev.Type {
	case "session.status_idle", "session.status_terminated", "session.deleted":
		o.finished = true
	case "session.status_running", "session.status_rescheduled":
		o.finished = false
	}
	var buf bytes.Buffer
	if err := o.c.pages.byName["session"].ExecuteTemplate(&buf, "event", ev); err != nil {
		o.c.log.Error("console event failed to render", "error", err)
		return false
	}
	return o.frame(ev.ID, "transcript", buf.String())
}

// end sends the session's fresh summary (status, usage, cost) and closes.
func (o *sseOut) end(ctx context.Context, id, problem string) {
	var buf bytes.Buffer
	if s, _, msg := o.c.loadSession(ctx, id); s != nil {
		sv := o.c.summary(s, o.c.cfg.Service.Now())
		sv.Live = false
		_ = o.c.pages.byName["session"].ExecuteTemplate(&buf, "summary", sv)
	} else if problem == "" {
		problem = msg
	}
	if problem != "" {
		var p bytes.Buffer
		_ = o.c.pages.byName["session"].ExecuteTemplate(&p, "streamproblem", problem)
		o.frame("", "problem", p.String())
	}
	o.frame("", "end", buf.String())
}

// pipeWriter is the ResponseWriter of the in-process stream request.
type pipeWriter struct {
	header  http.Header
	w       *io.PipeWriter
	once    sync.Once
	status  int
	started chan struct{}
}

func (p *pipeWriter) Header() http.Header { return p.header }
func (p *pipeWriter) start(status int) {
	p.once.Do(func() { p.status = status; close(p.started) })
}
func (p *pipeWriter) WriteHeader(status int) { p.start(status) }
func (p *pipeWriter) Write(b []byte) (int, error) {
	p.start(http.StatusOK)
	return p.w.Write(b)
}
func (p *pipeWriter) Flush() {}
