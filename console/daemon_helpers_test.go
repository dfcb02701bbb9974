package console_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// rig is a real daemon (bbolt file, Unix socket, TCP listener, local
// backend with command harnesses unconfined) plus a TCP forwarder to its
// socket: the documented `ssh -L 8080:/run/sandbox0d/sandbox0d.sock`,
// which is how a browser reaches the trusted socket.
type rig struct {
	d       *daemon.Daemon
	socket  string
	tcpURL  string // the TCP listener (sign-in needed)
	sockURL string // the forwarder to the socket (trusted)
	logs    *syncBuffer
	stop    func(t *testing.T) // stops the daemon (once; cleanup calls it too)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func rigConfig(t *testing.T) daemon.Config {
	dir := t.TempDir()
	return daemon.Config{
		DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "s.sock"), Listen: "127.0.0.1:0", Backend: "local",
		ShutdownTimeout: 5 * time.Second, Log: daemon.LogConfig{Level: "info", Format: "text"},
		Schedule: daemon.ScheduleConfig{Workers: 2, MisfireGrace: time.Minute},
		Console:  daemon.ConsoleConfig{Enabled: true},
		Local: daemon.LocalConfig{
			Sandbox: "none",
			Agents: []daemon.LocalAgent{
				{ID: "agent_a", Version: 1, Command: []string{"/bin/sh", "-c", "cat >/dev/null; echo ok"}},
			},
			Environments: []daemon.LocalEnvironment{{ID: "env_1", Timeout: time.Minute}},
		},
	}
}

func startRig(t *testing.T, cfg daemon.Config, opts daemon.Options) *rig {
	t.Helper()
	logs := &syncBuffer{}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	var once sync.Once
	stop := func(t *testing.T) {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(func() { stop(t) })
	r := &rig{d: d, socket: cfg.Socket, logs: logs, stop: stop}
	if a := d.TCPAddr(); a != nil {
		r.tcpURL = "http://" + a.String()
	}
	r.sockURL = forwardToSocket(t, cfg.Socket)
	return r
}

// forwardToSocket listens on loopback TCP and pipes every connection to
// the Unix socket.
func forwardToSocket(t *testing.T, socket string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns { // idle keep-alive connections of the clients
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			track(c, true)
			wg.Go(func() {
				defer func() { track(c, false); _ = c.Close() }()
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); _ = u.(*net.UnixConn).CloseWrite() }()
				_, _ = io.Copy(c, u)
			})
		}
	})
	return "http://" + l.Addr().String()
}

func (r *rig) socketHTTP() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.socket)
	}}}
}

// client is the official Go SDK on the socket.
func (r *rig) client() anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL("http://sandbox0d"), option.WithHTTPClient(r.socketHTTP()),
		option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

func deploymentParams(name, agent, cron, zone string) anthropic.BetaDeploymentNewParams {
	p := anthropic.BetaDeploymentNewParams{
		Name:          name,
		Agent:         anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt(agent)},
		EnvironmentID: "env_1",
		InitialEvents: []anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion{{
			OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
				{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "Summarise yesterday's commits"}}}}}},
	}
	if cron != "" {
		p.Schedule = anthropic.BetaManagedAgentsScheduleParams{Expression: cron, Timezone: zone}
	}
	return p
}

// admin calls an admin route on the socket and decodes the JSON answer.
func (r *rig) admin(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://sandbox0d"+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.socketHTTP().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	var out map[string]any
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

func signingKey() string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
}
