package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/stretchr/testify/require"
)

// waitLimit bounds every wait in these tests; nothing should come close.
const waitLimit = 60 * time.Second

const testEnvironment = "env_test"

// syncBuffer is a log sink the test reads while the backend writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type testRig struct {
	t      testing.TB
	dir    string
	st     *store.Store
	ns     *store.Namespace
	b      *Backend
	cfg    Config
	logs   *syncBuffer
	srv    *httptest.Server
	client anthropic.Client
}

// openStore opens a real store file and the local namespace on it.
func openStore(t testing.TB, path string) (*store.Store, *store.Namespace) {
	t.Helper()
	return openStoreWith(t, path, store.Options{})
}

func openStoreWith(t testing.TB, path string, opts store.Options) (*store.Store, *store.Namespace) {
	t.Helper()
	st, err := store.Open(path, opts)
	require.NoError(t, err)
	ns, err := st.Namespace(store.NamespaceLocal)
	require.NoError(t, err)
	return st, ns
}

// shAgent is an agent whose harness is an inline sh script.
func shAgent(id, script string) Agent {
	return Agent{ID: id, Version: 1, Command: []string{"/bin/sh", "-c", script}}
}

// newRig opens a real bbolt file and a backend on it, serves its session
// routes over HTTP and points an official SDK client at them.
func newRig(t testing.TB, agents []Agent, mutate func(*Config)) *testRig {
	t.Helper()
	return newRigAt(t, "", agents, mutate)
}

// newRigAt is newRig with the database at dbPath ("" for one in the rig's
// directory).
func newRigAt(t testing.TB, dbPath string, agents []Agent, mutate func(*Config)) *testRig {
	t.Helper()
	return newRigWith(t, dbPath, store.Options{}, agents, mutate)
}

// newRigWith is newRigAt with the store opened with opts.
func newRigWith(t testing.TB, dbPath string, opts store.Options, agents []Agent, mutate func(*Config)) *testRig {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "files"), 0o700))
	if dbPath == "" {
		dbPath = filepath.Join(dir, "state.db")
	}
	st, ns := openStoreWith(t, dbPath, opts)
	t.Cleanup(func() { require.NoError(t, st.Close()) })

	logs := &syncBuffer{}
	cfg := Config{
		Agents:          agents,
		Environments:    []Environment{{ID: testEnvironment}},
		FilesDir:        filepath.Join(dir, "files"),
		WorkspaceDir:    filepath.Join(dir, "workspaces"),
		KillGracePeriod: 5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(ns, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(b.SessionHandler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		// Tear down at once: terminate whatever a test left running.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = b.Close(ctx)
	})
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(srv.URL),
		option.WithAPIKey("test-key"), option.WithMaxRetries(0))
	return &testRig{t: t, dir: dir, st: st, ns: ns, b: b, cfg: cfg, logs: logs, srv: srv, client: client}
}

// userMessage is an initial user.message event in wire JSON.
func userMessage(text string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"type":    "user.message",
		"content": []map[string]string{{"type": "text", "text": text}},
	})
	return b
}

func (r *testRig) request(agentID string, mutate func(*sessions.CreateRequest)) sessions.CreateRequest {
	req := sessions.CreateRequest{
		DeploymentID:  "depl_test",
		RunID:         "drun_test",
		Agent:         sessions.AgentRef{ID: agentID, Version: 1},
		EnvironmentID: testEnvironment,
		InitialEvents: []json.RawMessage{userMessage("hello from the deployment")},
	}
	if mutate != nil {
		mutate(&req)
	}
	return req
}

func (r *testRig) create(agentID string, mutate func(*sessions.CreateRequest)) string {
	r.t.Helper()
	id, err := r.b.CreateSession(r.t.Context(), r.request(agentID, mutate))
	require.NoError(r.t, err)
	return id
}

// waitDone waits for a session to finish and returns its record.
func (r *testRig) waitDone(id string) *sessionRecord {
	r.t.Helper()
	select {
	case <-r.b.Done(id):
	case <-time.After(waitLimit):
		r.t.Fatalf("session %s did not finish; events:\n%s", id, r.dump(id))
	}
	rec, err := r.b.store.get(id)
	require.NoError(r.t, err)
	return rec
}

// waitForEvent follows a session's events (the same way the SSE handler
// does) until one matches.
func (r *testRig) waitForEvent(id string, match func(storedEvent) bool) storedEvent {
	r.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	var after uint64
	for {
		changed := r.b.watch(id)
		_, busy := r.b.activeSession(id)
		events, rec, err := r.b.store.eventsAfter(id, after, 1000, 1<<30)
		require.NoError(r.t, err)
		for _, ev := range events {
			after = ev.Seq
			if match(ev) {
				return ev
			}
		}
		if len(events) > 0 {
			continue
		}
		if rec.Status == statusTerminated || (rec.Status == statusIdle && !busy) {
			r.t.Fatalf("session %s ended (%s) before the expected event; events:\n%s", id, rec.Status, r.dump(id))
		}
		select {
		case <-changed:
		case <-deadline.C:
			r.t.Fatalf("timed out waiting for an event of session %s; events:\n%s", id, r.dump(id))
		}
	}
}

func (r *testRig) waitForText(id, prefix string) string {
	r.t.Helper()
	ev := r.waitForEvent(id, func(ev storedEvent) bool {
		return ev.Type == eventAgentMessage && strings.HasPrefix(eventText(ev.JSON), prefix)
	})
	return eventText(ev.JSON)
}

func (r *testRig) events(id string) []storedEvent {
	r.t.Helper()
	events, _, err := r.b.store.eventsAfter(id, 0, 1<<20, 1<<40)
	require.NoError(r.t, err)
	return events
}

func (r *testRig) types(id string) []string {
	var out []string
	for _, ev := range r.events(id) {
		out = append(out, ev.Type)
	}
	return out
}

func (r *testRig) texts(id string) []string {
	var out []string
	for _, ev := range r.events(id) {
		if ev.Type == eventAgentMessage {
			out = append(out, eventText(ev.JSON))
		}
	}
	return out
}

func (r *testRig) dump(id string) string {
	events, _, err := r.b.store.eventsAfter(id, 0, 1<<20, 1<<40)
	if err != nil {
		return err.Error()
	}
	var sb strings.Builder
	for _, ev := range events {
		sb.Write(ev.JSON)
		sb.WriteByte('\n')
	}
	if tail, err := r.b.StderrTail(id); err == nil && len(tail) > 0 {
		sb.WriteString("stderr: " + string(tail))
	}
	return sb.String()
}

// sessionError is the error object of the session's session.error event.
func (r *testRig) sessionError(id string) (errType, message string) {
	r.t.Helper()
	for _, ev := range r.events(id) {
		if ev.Type == eventSessionError {
			var body struct {
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(r.t, json.Unmarshal(ev.JSON, &body))
			return body.Error.Type, body.Error.Message
		}
	}
	r.t.Fatalf("session %s has no session.error; events:\n%s", id, r.dump(id))
	return "", ""
}

func eventText(event []byte) string { return messageText(event) }

// processGone reports whether pid has exited (gone, or a zombie nobody has
// reaped yet).
func processGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	end := bytes.LastIndexByte(data, ')')
	return end > 0 && len(data) > end+2 && data[end+2] == 'Z'
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !processGone(pid)
}
