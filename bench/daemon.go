package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// benchAPIKey is the TCP API key every benchmark daemon accepts.
const benchAPIKey = "sk-bench-0123456789abcdef"

// readyTimeout bounds a daemon's start (100,000 deployments load in well
// under it).
const readyTimeout = 3 * time.Minute

// launcher runs the daemon: the built binary, or (in `go test`) the test
// binary re-executing itself as the daemon.
type launcher struct {
	path string
	args []string // before "serve"
	env  []string // added to the environment
}

// daemonConfig is one daemon's configuration, passed as flags and
// SANDBOX0D_* variables exactly as an operator would.
type daemonConfig struct {
	DataDir     string
	Addr        string // 127.0.0.1:port; "" picks a free port
	UpstreamURL string
	UpstreamKey string
	// Backend is "upstream" (default: the strict fake at UpstreamURL) or
	// "local" (the embedded default; agent_bench and env_bench come from a
	// config file written into DataDir).
	Backend string
	// Env adds SANDBOX0D_* settings (SCHEDULE_WORKERS, UPSTREAM_RETRY_WINDOW …).
	Env map[string]string
}

// daemonProc is one running daemon process.
type daemonProc struct {
	cfg       daemonConfig
	socket    string
	logPath   string
	cmd       *exec.Cmd
	startedAt time.Time
	// readyIn is the time from exec to the first 200 from /readyz.
	readyIn time.Duration
	exited  chan struct{}
	waitErr error
	api     *apiClient
	admin   *http.Client
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// start execs the daemon and waits until /readyz answers 200 (bounded), or
// the process exits.
func (l launcher) start(ctx context.Context, cfg daemonConfig) (*daemonProc, error) {
	p, err := l.spawn(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.awaitReady(ctx); err != nil {
		p.kill()
		return p, err
	}
	return p, nil
}

// spawn execs the daemon without waiting for it to be ready.
func (l launcher) spawn(cfg daemonConfig) (*daemonProc, error) {
	if cfg.Addr == "" {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg.Addr = addr
	}
	p := &daemonProc{
		cfg:     cfg,
		socket:  filepath.Join(cfg.DataDir, "s.sock"),
		logPath: filepath.Join(cfg.DataDir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano())),
		exited:  make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	backend := cfg.Backend
	if backend == "" {
		backend = "upstream"
	}
	args := append(append([]string(nil), l.args...), "serve",
		"--data-dir", cfg.DataDir, "--socket", p.socket, "--listen", cfg.Addr, "--backend", backend)
	if backend == "local" {
		conf, err := writeLocalConfig(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--config", conf)
	}
	cmd := exec.Command(l.path, args...)
	cmd.Env = append(os.Environ(), l.env...)
	env := map[string]string{
		"SANDBOX0D_UPSTREAM_URL":     cfg.UpstreamURL,
		"SANDBOX0D_UPSTREAM_API_KEY": cfg.UpstreamKey,
		"SANDBOX0D_API_KEYS":         benchAPIKey,
		"SANDBOX0D_LOG_FORMAT":       "json",
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	p.cmd = cmd
	p.api = newAPIClient("http://"+cfg.Addr, 128)
	p.admin = socketClient(p.socket)
	p.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// writeLocalConfig writes the config of a local-backend benchmark daemon:
// the agent and environment every benchmark deployment names, with a
// harness that only exits (no benchmark waits on local sessions).
func writeLocalConfig(dir string) (string, error) {
	path := filepath.Join(dir, "local.yaml")
	conf := fmt.Sprintf(`local:
  sandbox: none
  agents:
    - id: %s
      version: 1
      command: ["/bin/true"]
  environments:
    - id: %s
`, benchAgent, benchEnv)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

func (p *daemonProc) awaitReady(ctx context.Context) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	probe := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := probe.Get(p.api.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.readyIn = time.Since(p.startedAt)
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("daemon exited before ready (%v); log %s:\n%s", p.waitErr, p.logPath, p.logTail(20))
		case <-deadline.C:
			return fmt.Errorf("daemon not ready after %s; log %s:\n%s", readyTimeout, p.logPath, p.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// pid is the daemon's process id.
func (p *daemonProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *daemonProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.api.hc.CloseIdleConnections()
}

// stop asks for a graceful shutdown (SIGTERM) and waits up to timeout, then
// kills. It reports whether the daemon exited cleanly by itself.
func (p *daemonProc) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		p.api.hc.CloseIdleConnections()
		return p.waitErr
	case <-t.C:
		p.kill()
		return fmt.Errorf("daemon did not stop within %s after SIGTERM; killed", timeout)
	}
}

// alive reports whether the process is still running.
func (p *daemonProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logTail returns the last n lines of the daemon's log.
func (p *daemonProc) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logCount counts log lines containing every one of substrs.
func (p *daemonProc) logCount(substrs ...string) int {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		all := true
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all && line != "" {
			n++
		}
	}
	return n
}

// logSum adds up the numeric attribute key of every JSON log line whose
// message contains msg.
func (p *daemonProc) logSum(msg, key string) int {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0
	}
	total := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if v, ok := rec[key].(float64); ok {
			total += int(v)
		}
	}
	return total
}

// dbPath is the daemon's bbolt file.
func (p *daemonProc) dbPath() string { return filepath.Join(p.cfg.DataDir, "sandbox0d.db") }
