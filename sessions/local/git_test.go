package local

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitRepo is a real repository served by git http-backend over loopback
// HTTPS, behind basic auth that demands token as the password. The daemon's
// git trusts the test server through GIT_SSL_CAINFO.
type gitRepo struct {
	url      string
	token    string
	firstSHA string // README "one"
	mainSHA  string // README "two"
	work     string // the working repository the served one was cloned from
	bare     string // the served repository
	backend  http.Handler
}

func runGitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("git http-backend is not installed: %v", err)
	}
	secret := make([]byte, 20)
	_, _ = rand.Read(secret)
	repo := &gitRepo{token: "ghs_" + hex.EncodeToString(secret)}

	work := t.TempDir()
	runGitCmd(t, work, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(work, "README"), []byte("one\n"), 0o600))
	runGitCmd(t, work, "add", "README")
	runGitCmd(t, work, "commit", "-q", "-m", "one")
	repo.firstSHA = runGitCmd(t, work, "rev-parse", "HEAD")
	require.NoError(t, os.WriteFile(filepath.Join(work, "README"), []byte("two\n"), 0o600))
	runGitCmd(t, work, "commit", "-q", "-am", "two")
	repo.mainSHA = runGitCmd(t, work, "rev-parse", "HEAD")
	runGitCmd(t, work, "checkout", "-q", "-b", "feature")
	require.NoError(t, os.WriteFile(filepath.Join(work, "FEATURE"), []byte("feature\n"), 0o600))
	runGitCmd(t, work, "add", "FEATURE")
	runGitCmd(t, work, "commit", "-q", "-m", "feature")
	runGitCmd(t, work, "checkout", "-q", "main") // the default branch of the served repository
	root := t.TempDir()
	runGitCmd(t, root, "clone", "-q", "--bare", work, filepath.Join(root, "project.git"))

	backend := &cgi.Handler{Path: gitHTTPBackend, Root: "/git",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, password, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(repo.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	trustServer(t, srv)
	repo.url = srv.URL + "/git/project.git"
	repo.work = work
	repo.bare = filepath.Join(root, "project.git")
	repo.backend = backend
	return repo
}

// allowLoopbackClones lists 127.0.0.1 in the test environment's
// allowed_hosts: the test git servers listen there, and clones reach no
// loopback address that is not listed.
func allowLoopbackClones(c *Config) {
	c.Environments[0].Networking.AllowedHosts = []string{"127.0.0.1"}
}

// trustServer makes git (started by a Backend created afterwards) trust the
// test server's certificate.
func trustServer(t *testing.T, srv *httptest.Server) {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(caFile, cert, 0o600))
	t.Setenv("GIT_SSL_CAINFO", caFile)
}

// gitWrapper is a GitBinary that records every argv it is run with.
func gitWrapper(t *testing.T) (binary, argvLog string) {
	dir := t.TempDir()
	argvLog = filepath.Join(dir, "argv.log")
	binary = filepath.Join(dir, "git")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + argvLog + "'\nexec /usr/bin/git \"$@\"\n"
	require.NoError(t, os.WriteFile(binary, []byte(script), 0o700))
	return binary, argvLog
}

// cmdlinesContaining lists the processes whose argv contains needle.
func cmdlinesContaining(t *testing.T, needle string) []string {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	var hits []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte(needle)) {
			hits = append(hits, p+": "+string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
		}
	}
	return hits
}

func TestGitRepositoryClonedWithTokenThatLeaksNowhere(t *testing.T) {
	repo := newGitRepo(t)
	tests := []struct {
		name      string
		checkout  *sessions.Checkout
		mountPath string
		wantDir   string
		wantFile  string
		wantText  string
		wantHead  string
	}{
		{name: "default branch at default mount", wantDir: "project", wantFile: "README", wantText: "two\n", wantHead: repo.mainSHA},
		{name: "branch at relative mount", checkout: &sessions.Checkout{Type: "branch", Name: "feature"},
			mountPath: "src/app", wantDir: "src/app", wantFile: "FEATURE", wantText: "feature\n"},
		{name: "short commit sha", checkout: &sessions.Checkout{Type: "commit", SHA: repo.firstSHA[:8]},
			wantDir: "project", wantFile: "README", wantText: "one\n", wantHead: repo.firstSHA},
		{name: "commit at upstream-style absolute mount", checkout: &sessions.Checkout{Type: "commit", SHA: repo.firstSHA},
			mountPath: "/workspace/pinned", wantDir: "pinned", wantFile: "README", wantText: "one\n", wantHead: repo.firstSHA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gitBinary, argvLog := gitWrapper(t)
			rig := newRig(t, []Agent{shAgent("agent_git", `echo "ready $$"; sleep 1000 & wait`)},
				func(c *Config) { c.GitBinary = gitBinary; allowLoopbackClones(c) })
			id := rig.create("agent_git", func(req *sessions.CreateRequest) {
				req.Resources = []sessions.Resource{{Type: "github_repository", URL: repo.url,
					Checkout: tt.checkout, MountPath: tt.mountPath, AuthorizationToken: repo.token}}
			})

			// While the harness runs: no process has the token in its argv,
			// and the harness itself never had it at all.
			ready := rig.waitForText(id, "ready ")
			assert.Empty(t, cmdlinesContaining(t, repo.token))
			harnessEnv, err := os.ReadFile("/proc/" + strings.TrimPrefix(ready, "ready ") + "/environ")
			require.NoError(t, err)
			assert.NotContains(t, string(harnessEnv), repo.token)

			_, err = rig.b.interrupt(id)
			require.NoError(t, err)
			rig.waitDone(id)

			clone := filepath.Join(rig.cfg.WorkspaceDir, id, tt.wantDir)
			content, err := os.ReadFile(filepath.Join(clone, tt.wantFile))
			require.NoError(t, err, rig.dump(id))
			assert.Equal(t, tt.wantText, string(content))
			if tt.wantHead != "" {
				assert.Equal(t, tt.wantHead, runGitCmd(t, clone, "rev-parse", "HEAD"))
			}
			gitConfig, err := os.ReadFile(filepath.Join(clone, ".git", "config"))
			require.NoError(t, err)
			assert.Contains(t, string(gitConfig), "url = "+repo.url, "the remote URL is the plain URL")

			argv, err := os.ReadFile(argvLog)
			require.NoError(t, err)
			assert.Contains(t, string(argv), "clone --quiet")
			assertNoSecret(t, rig, id, repo.token, map[string][]byte{
				".git/config": gitConfig,
				"git argv":    argv,
			})
		})
	}
}

func TestGitCloneFailsWithoutTheToken(t *testing.T) {
	repo := newGitRepo(t)
	for name, token := range map[string]string{"no token": "", "wrong token": "ghs_wrong"} {
		t.Run(name, func(t *testing.T) {
			rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, allowLoopbackClones)
			id := rig.create("agent_git", func(req *sessions.CreateRequest) {
				req.Resources = []sessions.Resource{{Type: "github_repository", URL: repo.url, AuthorizationToken: token}}
			})
			rec := rig.waitDone(id)
			assert.Equal(t, statusTerminated, rec.Status)
			errType, message := rig.sessionError(id)
			assert.Equal(t, errorTypeRepoAuth, errType, message)
			assert.Contains(t, message, repo.url)
			assert.NotContains(t, rig.texts(id), "should not run", "the harness does not start without its repository")
			assert.NoDirExists(t, filepath.Join(rig.cfg.WorkspaceDir, id, "project", ".git"))
			if token != "" {
				assertNoSecret(t, rig, id, token, nil)
			}
		})
	}
}

// assertNoSecret checks every place a token could leak to: events, logs,
// the stderr tail, the bbolt file, and the extra texts given.
func assertNoSecret(t *testing.T, rig *testRig, id, secret string, extra map[string][]byte) {
	t.Helper()
	basic := basicAuth(secret)
	check := func(where string, data []byte) {
		assert.NotContains(t, string(data), secret, "token found in %s", where)
		assert.NotContains(t, string(data), basic, "token (basic auth form) found in %s", where)
	}
	for where, data := range extra {
		check(where, data)
	}
	check("logs", []byte(rig.logs.String()))
	check("events", []byte(rig.dump(id)))
	stderr, err := rig.b.StderrTail(id)
	require.NoError(t, err)
	check("stderr", stderr)
	db, err := os.ReadFile(rig.st.Path())
	require.NoError(t, err)
	check("the bbolt file", db)
	require.NoError(t, filepath.Walk(filepath.Join(rig.cfg.WorkspaceDir, id), func(path string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil {
			check(path, data)
		}
		return err
	}))
}

// A redirect from the https origin to plain http on another host must not
// take the token along: git follows no redirect when it carries a token.
func TestGitRedirectDowngradeNeverSeesTheToken(t *testing.T) {
	repo := newGitRepo(t)
	var seen struct {
		sync.Mutex
		requests int
		auth     []string
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Lock()
		seen.requests++
		if a := r.Header.Get("Authorization"); a != "" {
			seen.auth = append(seen.auth, a)
		}
		seen.Unlock()
		repo.backend.ServeHTTP(w, r) // would serve the repository to whoever follows
	}))
	defer plain.Close()
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer origin.Close()
	trustServer(t, origin)

	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, allowLoopbackClones)
	id := rig.create("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: origin.URL + "/git/project.git",
			AuthorizationToken: repo.token}}
	})
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	errType, message := rig.sessionError(id)
	assert.Contains(t, []string{errorTypeRepoClone, errorTypeRepoNotFound}, errType, message)
	seen.Lock()
	defer seen.Unlock()
	assert.Empty(t, seen.auth, "the redirect target received the token")
	assert.Zero(t, seen.requests, "git followed the redirect")
	assert.NotContains(t, rig.texts(id), "should not run")
	assertNoSecret(t, rig, id, repo.token, nil)
}

// A tag named like the abbreviated sha wins over the commit in git's name
// resolution; the session fails instead of running on the tagged commit.
func TestGitShortShaHijackedByTagFailsTheSession(t *testing.T) {
	repo := newGitRepo(t)
	short := repo.firstSHA[:7]
	runGitCmd(t, repo.bare, "tag", short, repo.mainSHA)

	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, allowLoopbackClones)
	id := rig.create("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: repo.url, AuthorizationToken: repo.token,
			Checkout: &sessions.Checkout{Type: "commit", SHA: short}}}
	})
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	errType, message := rig.sessionError(id)
	assert.Equal(t, errorTypeRepoCheckout, errType, message)
	assert.Contains(t, message, "gave commit "+repo.mainSHA)
	assert.Contains(t, message, "full 40-hex commit sha")
	assert.NotContains(t, rig.texts(id), "should not run")
}

func TestGitTokenOverPlainHTTPIsRejected(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, nil)
	_, err := rig.b.CreateSession(t.Context(), rig.request("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: "http://127.0.0.1:1/x.git", AuthorizationToken: "ghs_x"}}
	}))
	var runErr *sessions.RunError
	require.ErrorAs(t, err, &runErr)
	assert.Contains(t, runErr.Message, "only sent over https")
}
