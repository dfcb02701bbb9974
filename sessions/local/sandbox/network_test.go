package sandbox_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// The test binary is also the forwarder inside limited sandboxes and the
// network client the tests run there as a harness.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.ForwarderCommand:
			os.Exit(sandbox.RunForwarder(os.Args[2:]))
		case "__fetch":
			os.Exit(fetch(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// fetch does one request per argument, "proxy URL", "direct URL" or
// "connect HOST:PORT", and prints one result line for each.
func fetch(args []string) int {
	for i := 0; i+1 < len(args); i += 2 {
		mode, arg := args[i], args[i+1]
		switch mode {
		case "proxy", "direct":
			// http.ProxyFromEnvironment never proxies loopback; the
			// proxy variables are what the sandbox sets.
			proxy, err := url.Parse(os.Getenv("HTTP_PROXY"))
			if err != nil {
				fmt.Printf("%s %s: error %v\n", mode, arg, err)
				continue
			}
			tr := &http.Transport{Proxy: http.ProxyURL(proxy)}
			if mode == "direct" {
				tr.Proxy = nil
			}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := c.Get(arg)
			if err != nil {
				fmt.Printf("%s %s: error %v\n", mode, arg, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("%s %s: %d %s\n", mode, arg, resp.StatusCode, strings.TrimSpace(string(body)))
		case "timed-direct", "timed-proxy":
			// arg is "URL,N": N downloads, printing the median total time
			// and time to the first response byte, in ns.
			target, n, _ := strings.Cut(arg, ",")
			count, _ := strconv.Atoi(n)
			tr := &http.Transport{DisableKeepAlives: true}
			if mode == "timed-proxy" {
				proxy, _ := url.Parse(os.Getenv("HTTP_PROXY"))
				tr.Proxy = http.ProxyURL(proxy)
			}
			var totals, firsts []time.Duration
			for j := 0; j < count; j++ {
				start := time.Now()
				resp, err := (&http.Client{Transport: tr}).Get(target)
				if err != nil {
					fmt.Printf("%s: error %v\n", mode, err)
					return 1
				}
				first := time.Since(start)
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					fmt.Printf("%s: error %v\n", mode, err)
					return 1
				}
				resp.Body.Close()
				totals, firsts = append(totals, time.Since(start)), append(firsts, first)
			}
			slices.Sort(totals)
			slices.Sort(firsts)
			fmt.Printf("%s %d %d\n", mode, totals[len(totals)/2], firsts[len(firsts)/2])
		case "connect":
			c, err := net.DialTimeout("tcp", sandbox.ProxyListenAddr, 5*time.Second)
			if err != nil {
				fmt.Printf("connect %s: error %v\n", arg, err)
				continue
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", arg, arg)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
			if err != nil {
				fmt.Printf("connect %s: error %v\n", arg, err)
			} else if resp.StatusCode == http.StatusOK {
				fmt.Printf("connect %s: 200\n", arg) // the tunnel is open; nothing to read
			} else {
				body, _ := io.ReadAll(resp.Body)
				fmt.Printf("connect %s: %d %s\n", arg, resp.StatusCode, strings.TrimSpace(string(body)))
			}
			c.Close()
		}
	}
	return 0
}

type netRig struct {
	sb    sandbox.Sandbox
	proxy *egress.Proxy
	logs  *bytes.Buffer
	exe   string
}

func newNetRig(t *testing.T) *netRig {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	proxy, err := egress.New(egress.Config{Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	exe, err := os.Executable()
	require.NoError(t, err)
	sb, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeBubblewrap, Egress: proxy,
		Forwarder: []string{exe, sandbox.ForwarderCommand}, Logger: log})
	require.NoError(t, err)
	return &netRig{sb: sb, proxy: proxy, logs: logs, exe: exe}
}

// run runs the test binary's fetch client in the sandbox.
func (r *netRig) run(t *testing.T, network sandbox.Network, args ...string) string {
	t.Helper()
	p, err := r.sb.Command(sandbox.Spec{SessionID: "ses_net", Argv: append([]string{r.exe, "__fetch"}, args...),
		Workspace: t.TempDir(), Env: childEnv(), Network: network})
	require.NoError(t, err)
	var out, stderr bytes.Buffer
	p.Cmd.Stdout, p.Cmd.Stderr = &out, &stderr
	require.NoError(t, p.Start())
	require.NoError(t, p.Wait(), "stderr: %s", stderr.String())
	return out.String()
}

// childEnv is the environment of the processes run in the sandbox: the
// test binary again (the forwarder, the fetch client). Built with -race, it
// would sleep a second at exit (the race runtime's atexit_sleep_ms) before
// exiting: a second per process that the tests would wait out. A race in
// them is still reported and still fails the run (exit status 66).
func childEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
}

func hostServer(t *testing.T) (srvURL, port string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the host")
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return srv.URL, port
}

func TestNetworkUnrestrictedReachesTheHost(t *testing.T) {
	r := newNetRig(t)
	url, _ := hostServer(t)
	out := r.run(t, sandbox.Network{}, "direct", url)
	assert.Contains(t, out, "direct "+url+": 200 hello from the host")
}

func TestNetworkLimitedWithNoHostsReachesNothing(t *testing.T) {
	r := newNetRig(t)
	url, port := hostServer(t)
	out := r.run(t, sandbox.Network{Limited: true, AllowedHosts: []string{}, Environment: "env_closed"},
		"direct", url, "proxy", url, "proxy", "http://localhost:"+port+"/", "connect", "example.com:443")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Contains(t, lines[0], "direct "+url+": error", "no route out but the proxy")
	assert.Contains(t, lines[1], ": 403 sandbox0d egress proxy: 127.0.0.1:"+port+" denied by the network policy of environment env_closed")
	assert.Contains(t, lines[2], ": 403 ")
	assert.Contains(t, lines[3], "connect example.com:443: 403 ")
	assert.Contains(t, lines[3], "not in allowed_hosts")
	_, denied := r.proxy.Counts()
	assert.EqualValues(t, 3, denied)
	assert.Contains(t, r.logs.String(), "session_id=ses_net")
}

func TestNetworkLimitedAllowsListedIPThroughTheProxyOnly(t *testing.T) {
	r := newNetRig(t)
	url, port := hostServer(t)
	out := r.run(t, sandbox.Network{Limited: true, AllowedHosts: []string{"127.0.0.1"}, Environment: "env_lo"},
		"proxy", url, "direct", url, "proxy", "http://localhost:"+port+"/", "connect", "127.0.0.1:"+port,
		"connect", "example.com:443")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.Equal(t, "proxy "+url+": 200 hello from the host", lines[0])
	assert.Contains(t, lines[1], "direct "+url+": error", "not directly")
	assert.Contains(t, lines[2], ": 403 ", "allowing 127.0.0.1 does not allow localhost")
	assert.Contains(t, lines[2], "localhost:"+port+" is not in allowed_hosts")
	assert.Equal(t, "connect 127.0.0.1:"+port+": 200", strings.TrimSpace(lines[3]))
	assert.Contains(t, lines[4], "connect example.com:443: 403 ")
	allowed, denied := r.proxy.Counts()
	assert.EqualValues(t, 2, allowed)
	assert.EqualValues(t, 2, denied)
}

// lockedWriter serializes log writes from the proxy's goroutines.
type lockedWriter struct {
	mu chan struct{}
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chan struct{}, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

// BenchmarkEgressDownload10MB downloads 10 MB from a host server, from
// inside a sandbox: directly (unrestricted) and through the forwarder and
// the egress proxy (limited). Each op is 10 downloads per path; reported
// are median MB/s and median time to first byte of each path.
func BenchmarkEgressDownload10MB(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bwrap is not installed")
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		_, _ = w.Write(payload)
	}))
	defer srv.Close()
	proxy, err := egress.New(egress.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	exe, _ := os.Executable()
	sb, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeBubblewrap, Egress: proxy,
		Forwarder: []string{exe, sandbox.ForwarderCommand}})
	if err != nil {
		b.Fatal(err)
	}
	run := func(mode string, network sandbox.Network) (total, first time.Duration) {
		p, err := sb.Command(sandbox.Spec{SessionID: "ses_bench", Argv: []string{exe, "__fetch", mode, srv.URL + ",10"},
			Workspace: b.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}, Network: network})
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		p.Cmd.Stdout = &out
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			b.Fatalf("%v: %s", err, out.String())
		}
		var name string
		var tot, fb int64
		if _, err := fmt.Sscanf(out.String(), "%s %d %d", &name, &tot, &fb); err != nil {
			b.Fatalf("%v: %q", err, out.String())
		}
		return time.Duration(tot), time.Duration(fb)
	}
	limited := sandbox.Network{Limited: true, AllowedHosts: []string{"127.0.0.1"}, Environment: "env_bench"}
	var direct, proxied, directFirst, proxiedFirst time.Duration
	for i := 0; i < b.N; i++ {
		direct, directFirst = run("timed-direct", sandbox.Network{})
		proxied, proxiedFirst = run("timed-proxy", limited)
	}
	mb := float64(len(payload)) / (1 << 20)
	b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/proxied.Seconds(), "proxy-MB/s")
	b.ReportMetric(float64(directFirst.Microseconds())/1000, "direct-ttfb-ms")
	b.ReportMetric(float64(proxiedFirst.Microseconds())/1000, "proxy-ttfb-ms")
}
