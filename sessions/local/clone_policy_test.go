package local

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// countingServer is a plain-HTTP server on loopback that counts every
// request and serves h (nil: 404).
type countingServer struct {
	*httptest.Server
	requests atomic.Int64
	hostsMu  sync.Mutex
	hosts    []string
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.requests.Add(1)
		cs.hostsMu.Lock()
		cs.hosts = append(cs.hosts, r.Host)
		cs.hostsMu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(cs.Close)
	return cs
}

// hostPort is the server's 127.0.0.1:port.
func (cs *countingServer) hostPort() string { return strings.TrimPrefix(cs.URL, "http://") }

// assertShortAndClean checks a session.error message is one short
// printable line.
func assertShortAndClean(t *testing.T, message string) {
	t.Helper()
	assert.LessOrEqual(t, len(message), 600, message)
	for _, r := range message {
		assert.False(t, unicode.IsControl(r), "control character %q in %q", r, message)
	}
}

func cloneSession(t *testing.T, rig *testRig, repoURL string) (errType, message string, rec *sessionRecord) {
	t.Helper()
	id := rig.create("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: repoURL}}
	})
	rec = rig.waitDone(id)
	errType, message = rig.sessionError(id)
	assert.NotContains(t, rig.texts(id), "should not run")
	return errType, message, rec
}

// A limited environment clones only from allowed_hosts: a repository on a
// loopback host it does not list is never contacted, and the session.error
// says why in one short line.
func TestLimitedCloneOfUnlistedHostNeverContactsIt(t *testing.T) {
	srv := newCountingServer(t, nil)
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) {
		c.Environments[0].Networking = Networking{Type: NetworkingLimited, AllowedHosts: []string{"github.com"}}
	})
	errType, message, rec := cloneSession(t, rig, srv.URL+"/internal/repo.git")
	assert.Equal(t, statusTerminated, rec.Status)
	assert.Equal(t, errorTypeRepoClone, errType, message)
	assert.Contains(t, message, srv.hostPort()+" is not in allowed_hosts")
	assert.Contains(t, message, "networking type limited")
	assert.Contains(t, message, "list it in local.environments[0].networking.allowed_hosts")
	assertShortAndClean(t, message)
	assert.Zero(t, srv.requests.Load(), "the unlisted host was contacted")
}

// Listing the host (with its port) lets the limited clone through: the
// refusal above is the policy, not a broken clone path.
func TestLimitedCloneOfListedHostReachesIt(t *testing.T) {
	repo := newGitRepo(t)
	srv := newCountingServer(t, repo.backend)
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) {
		c.Environments[0].Networking = Networking{Type: NetworkingLimited, AllowedHosts: []string{srv.hostPort()}}
	})
	id := rig.create("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: srv.URL + "/git/project.git"}}
	})
	rig.waitDone(id)
	assert.Positive(t, srv.requests.Load())
	content, err := os.ReadFile(filepath.Join(rig.cfg.WorkspaceDir, id, "project", "README"))
	require.NoError(t, err, rig.dump(id))
	assert.Equal(t, "two\n", string(content))
	// The harness itself is refused afterwards: no sandbox, limited network.
	errType, message := rig.sessionError(id)
	assert.NotEqual(t, errorTypeRepoClone, errType, message)
}

// Every environment refuses loopback, private, link-local and metadata
// addresses that allowed_hosts does not name, unrestricted ones included.
func TestUnrestrictedCloneOfInternalAddressIsRefused(t *testing.T) {
	srv := newCountingServer(t, nil)
	_, port, _ := strings.Cut(srv.hostPort(), ":")
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, nil)
	for _, u := range []string{
		srv.URL + "/internal/repo.git",
		"http://[::1]:" + port + "/repo.git",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://10.1.2.3/repo.git",
		"http://100.100.100.200/repo.git",
		"http://0.0.0.0:" + port + "/repo.git",
	} {
		errType, message, _ := cloneSession(t, rig, u)
		assert.Equal(t, errorTypeRepoClone, errType, message)
		assert.Contains(t, message, "loopback, private or link-local", u)
		assert.Contains(t, message, "networking type unrestricted", u)
		assertShortAndClean(t, message)
	}
	assert.Zero(t, srv.requests.Load(), "an internal address was contacted")
}

// The clone proxy resolves names itself and dials what it checked: git
// reaches a name only through it (git could not resolve repo.test at all),
// a name resolving to an unlisted loopback address is refused, and a name
// that rebinds to loopback after the first check is refused at connect.
func TestCloneResolvesThroughTheProxy(t *testing.T) {
	repo := newGitRepo(t)
	srv := newCountingServer(t, repo.backend)
	_, port, _ := strings.Cut(srv.hostPort(), ":")
	repoURL := "http://repo.test:" + port + "/git/project.git"
	var lookups atomic.Int64
	rebind := false
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "repo.test" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		if lookups.Add(1) == 1 && rebind {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}

	t.Run("unlisted", func(t *testing.T) {
		rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) { c.resolve = resolve })
		errType, message, _ := cloneSession(t, rig, repoURL)
		assert.Equal(t, errorTypeRepoClone, errType, message)
		assert.Contains(t, message, "repo.test resolves to 127.0.0.1")
		assertShortAndClean(t, message)
		assert.Zero(t, srv.requests.Load())
	})
	t.Run("rebinding", func(t *testing.T) {
		rebind = true
		defer func() { rebind = false }()
		lookups.Store(0)
		rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) { c.resolve = resolve })
		errType, message, _ := cloneSession(t, rig, repoURL)
		assert.Equal(t, errorTypeRepoClone, errType, message)
		assert.Contains(t, message, "repo.test resolves to 127.0.0.1")
		assertShortAndClean(t, message)
		assert.GreaterOrEqual(t, lookups.Load(), int64(2), "the proxy resolved again")
		assert.Zero(t, srv.requests.Load())
	})
	t.Run("listed", func(t *testing.T) {
		rig := newRig(t, []Agent{shAgent("agent_git", `echo "cloned"`)}, func(c *Config) {
			c.resolve = resolve
			c.Environments[0].Networking.AllowedHosts = []string{"127.0.0.1"}
		})
		id := rig.create("agent_git", func(req *sessions.CreateRequest) {
			req.Resources = []sessions.Resource{{Type: "github_repository", URL: repoURL}}
		})
		rig.waitDone(id)
		assert.Contains(t, rig.texts(id), "cloned", rig.dump(id))
		content, err := os.ReadFile(filepath.Join(rig.cfg.WorkspaceDir, id, "project", "README"))
		require.NoError(t, err, rig.dump(id))
		assert.Equal(t, "two\n", string(content))
		srv.hostsMu.Lock()
		defer srv.hostsMu.Unlock()
		require.NotEmpty(t, srv.hosts)
		assert.Equal(t, "repo.test:"+port, srv.hosts[0], "the request came through the proxy with the URL's name")
	})
}

// A redirect git follows goes through the proxy too: a listed host that
// redirects to an unlisted one gets the clone refused, and the redirect
// target is never contacted. The daemon's own NO_PROXY (which would let
// curl go around the proxy) does not reach git.
func TestCloneRedirectToUnlistedHostIsRefused(t *testing.T) {
	t.Setenv("NO_PROXY", "*")
	t.Setenv("no_proxy", "*")
	target := newCountingServer(t, nil)
	origin := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	for _, networking := range []Networking{
		{Type: NetworkingLimited, AllowedHosts: []string{origin.hostPort()}},
		{AllowedHosts: []string{origin.hostPort()}},
	} {
		rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) {
			c.Environments[0].Networking = networking
		})
		errType, message, _ := cloneSession(t, rig, origin.URL+"/repo.git")
		assert.Equal(t, errorTypeRepoClone, errType, message)
		assert.Contains(t, message, target.hostPort(), message)
		assertShortAndClean(t, message)
	}
	assert.Positive(t, origin.requests.Load())
	assert.Zero(t, target.requests.Load(), "the redirect target was contacted")
}

// What a git server says reaches the session.error only as one short,
// cleaned line of git's own: no remote: lines, no control characters.
func TestCloneErrorDoesNotEchoTheServer(t *testing.T) {
	marker := "INTERNAL-SERVICE-SAYS-" + strings.Repeat("x", 400)
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A smart-HTTP advertisement that is an ERR packet with terminal
		// escapes and a long text: git prints it as "remote error: …".
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		svc := "# service=git-upload-pack\n"
		fmt.Fprintf(w, "%04x%s0000", len(svc)+4, svc)
		msg := "ERR \x1b[31m" + marker + "\r\n"
		fmt.Fprintf(w, "%04x%s", len(msg)+4, msg)
	}))
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) {
		c.Environments[0].Networking.AllowedHosts = []string{"127.0.0.1"}
	})
	_, message, _ := cloneSession(t, rig, srv.URL+"/repo.git")
	assert.Positive(t, srv.requests.Load())
	assertShortAndClean(t, message)
	assert.NotContains(t, message, marker)
	assert.NotContains(t, message, "\x1b")
}

func TestGitDetailDropsRemoteLinesAndCleans(t *testing.T) {
	stderr := "Cloning into 'x'...\nfatal: unable to access 'http://h/': The requested URL returned error: 500\n" +
		"remote: internal secret\r\nremote: \x1b[2Jmore\n\n"
	assert.Equal(t, "fatal: unable to access 'http://h/': The requested URL returned error: 500", gitDetail(stderr))
	long := gitDetail("fatal: " + strings.Repeat("é", 300) + "\x00\x07")
	assert.LessOrEqual(t, len(long), maxGitDetail+len("…"))
	assert.True(t, strings.HasSuffix(long, "…"))
	assert.Equal(t, "a b c", cleanLine("a\x00\x01b\t\tc\xff"))
	assert.Equal(t, "", gitDetail("remote: only the server spoke\n"))
}
