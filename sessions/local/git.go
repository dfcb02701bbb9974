package local

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// gitPassthroughEnv are the daemon variables git may need to reach a remote
// (CA bundles). Everything else in git's environment is set here. The
// proxy variables are not passed: git goes through the clone proxy, and a
// NO_PROXY would let curl go around it.
var gitPassthroughEnv = []string{
	"PATH", "HOME", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
}

// maxGitDetail caps the part of git's stderr that reaches a session.error:
// it is the remote's words, and must not turn the daemon into a reader of
// internal services for whoever can create a session.
const maxGitDetail = 200

// gitTokenUser is the user name GitHub expects with an installation or
// personal access token in HTTP basic auth.
const gitTokenUser = "x-access-token"

var commitSHA = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)

// checkRepository validates a github_repository resource before the session
// is created, so a bad definition is a run error and not a failed session.
func checkRepository(res sessions.Resource) error {
	u, err := url.Parse(res.URL)
	switch {
	case err != nil:
		return fmt.Errorf("url %q: %w", res.URL, err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("url %q: only https:// (or http://) repositories can be cloned", res.URL)
	case u.Host == "":
		return fmt.Errorf("url %q: has no host", res.URL)
	case u.User != nil:
		// Credentials in the URL would land in argv and .git/config.
		return fmt.Errorf("url %q: must not carry credentials; use authorization_token", redactURL(u))
	case u.Scheme != "https" && res.AuthorizationToken != "":
		// Plain http would hand the token to anyone on the path.
		return fmt.Errorf("url %q: an authorization_token is only sent over https://", res.URL)
	}
	if c := res.Checkout; c != nil {
		switch c.Type {
		case "branch":
			if c.Name == "" || strings.ContainsAny(c.Name, "\x00\n\r") || strings.HasPrefix(c.Name, "-") {
				return fmt.Errorf("checkout.name %q is not a branch name", c.Name)
			}
		case "commit":
			if !commitSHA.MatchString(c.SHA) {
				return fmt.Errorf("checkout.sha %q is not a commit sha", c.SHA)
			}
		default:
			return fmt.Errorf("checkout.type %q is not branch or commit", c.Type)
		}
	}
	return nil
}

// environmentKey is the config key of an environment, for messages.
func (b *Backend) environmentKey(id string) string {
	for i, e := range b.cfg.Environments {
		if e.ID == id {
			return fmt.Sprintf("local.environments[%d]", i)
		}
	}
	return "local.environments"
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// cloneSpec is one repository to materialize. Token is the decrypted
// authorization token; it only ever goes into git's environment.
type cloneSpec struct {
	URL      string
	Checkout *sessions.Checkout
	Token    string
	Dir      string // absolute clone target inside the workspace
	// SessionID and Env say whose network policy the clone obeys.
	SessionID string
	Env       Environment
}

// cloneRepository clones spec.URL into spec.Dir and checks out the branch or
// commit. Failures are *sessionFailure with a repository_* type and a
// message scrubbed of the token.
//
// Every git run goes through a clone proxy that holds it to the
// environment's network policy (limited: allowed_hosts only; any
// environment: no loopback, private, link-local or metadata address unless
// its IP is listed), redirects included. The URL's host is checked before
// git starts, so a refused repository is never contacted at all.
func (b *Backend) cloneRepository(ctx context.Context, workspace string, spec cloneSpec) error {
	proxy, err := egress.ListenClone(egress.CloneConfig{SessionID: spec.SessionID,
		Network: spec.Env.sandboxNetwork(), Resolve: b.cfg.resolve, Logger: b.log.With("component", "clone")})
	if err != nil {
		return failuref("cloning %s: %v", spec.URL, err)
	}
	defer proxy.Close()
	if err := proxy.Check(ctx, spec.URL); errors.Is(err, egress.ErrRefused) {
		return &sessionFailure{Type: errorTypeRepoClone, RepositoryURL: spec.URL,
			Message: fmt.Sprintf("cloning %s refused: %s (to allow it, list it in %s.networking.allowed_hosts)",
				spec.URL, strings.TrimPrefix(err.Error(), egress.ErrRefused.Error()+": "), b.environmentKey(spec.Env.ID))}
	}
	gitFailure := func(ctx context.Context, doing, repoURL, stderr string, err error) error {
		return gitFailure(ctx, doing, repoURL, stderr, proxy.Refusal(), err)
	}
	env := b.gitEnv(spec, proxy.URL())
	args := []string{"clone", "--quiet"}
	if c := spec.Checkout; c != nil && c.Type == "branch" {
		args = append(args, "--branch", c.Name)
	} else if c != nil && c.Type == "commit" {
		args = append(args, "--no-checkout")
	}
	args = append(args, "--", spec.URL, spec.Dir)
	if stderr, err := b.runGit(ctx, env, workspace, spec.Token, args...); err != nil {
		return gitFailure(ctx, "cloning", spec.URL, stderr, err)
	}
	c := spec.Checkout
	if c == nil || c.Type != "commit" {
		return nil
	}
	if _, err := b.runGit(ctx, env, spec.Dir, spec.Token, "checkout", "--quiet", "--detach", c.SHA); err == nil {
		return b.verifyHead(ctx, env, spec)
	}
	// The commit may not be reachable from the cloned refs; ask for it.
	if stderr, err := b.runGit(ctx, env, spec.Dir, spec.Token, "fetch", "--quiet", "origin", c.SHA); err != nil {
		return gitFailure(ctx, "fetching commit "+c.SHA+" of", spec.URL, stderr, err)
	}
	if stderr, err := b.runGit(ctx, env, spec.Dir, spec.Token, "checkout", "--quiet", "--detach", c.SHA); err != nil {
		f := gitFailure(ctx, "checking out commit "+c.SHA+" of", spec.URL, stderr, err)
		if sf, ok := f.(*sessionFailure); ok {
			sf.Type = errorTypeRepoCheckout
		}
		return f
	}
	return b.verifyHead(ctx, env, spec)
}

// verifyHead checks that the commit checked out is the one asked for. git
// resolves a name to a ref before it takes it as an abbreviated sha, so a
// short sha can be hijacked by a tag or branch of the same name; the
// session fails rather than run on code nobody pinned.
func (b *Backend) verifyHead(ctx context.Context, env []string, spec cloneSpec) error {
	want := strings.ToLower(spec.Checkout.SHA)
	head, err := b.runGitOutput(ctx, env, spec.Dir, spec.Token, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return gitFailure(ctx, "reading the checked out commit of", spec.URL, head, "", err)
	}
	if !strings.HasPrefix(head, want) {
		return &sessionFailure{Type: errorTypeRepoCheckout, RepositoryURL: spec.URL,
			Message: fmt.Sprintf("checking out commit %s of %s gave commit %s instead (a tag or branch named %s?); "+
				"pin the full 40-hex commit sha", spec.Checkout.SHA, spec.URL, head, spec.Checkout.SHA)}
	}
	return nil
}

// gitEnv isolates git from the user's and system's git config (no
// credential helpers that could store the token, no prompts), sends it
// through the clone proxy and hands it the token as an http.extraHeader
// scoped to the repository's origin. Settings go in the environment, not
// argv, which every local user can read.
func (b *Backend) gitEnv(spec cloneSpec, proxyURL string) []string {
	env := b.passthrough(gitPassthroughEnv)
	env = append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
	)
	// http.proxy applies to https (CONNECT) and http alike; git's file,
	// ssh and ext transports, which would go around it, are not allowed.
	settings := [][2]string{
		{"http.proxy", proxyURL},
		{"http.proxyAuthMethod", "basic"},
	}
	if spec.Token == "" {
		env = append(env, "GIT_ALLOW_PROTOCOL=http:https")
	} else {
		// git sends http.extraHeader to wherever a redirect leads, plain
		// http on another host included; with a token it follows no
		// redirect and speaks https only.
		u, _ := url.Parse(spec.URL) // validated by checkRepository
		origin := u.Scheme + "://" + u.Host + "/"
		env = append(env, "GIT_ALLOW_PROTOCOL=https")
		settings = append(settings,
			[2]string{"http." + origin + ".extraHeader", "Authorization: Basic " + basicAuth(spec.Token)},
			[2]string{"http.followRedirects", "false"})
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(settings)))
	for i, kv := range settings {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

func basicAuth(token string) string {
	return base64.StdEncoding.EncodeToString([]byte(gitTokenUser + ":" + token))
}

// runGit runs git in its own process group, bounded by ctx, and returns its
// stderr with the token scrubbed.
func (b *Backend) runGit(ctx context.Context, env []string, dir, token string, args ...string) (string, error) {
	return b.runGitTo(ctx, nil, env, dir, token, args...)
}

// runGitOutput runs git like runGit and returns its trimmed stdout, or its
// stderr when it fails.
func (b *Backend) runGitOutput(ctx context.Context, env []string, dir, token string, args ...string) (string, error) {
	out := harness.NewTailBuffer(16 << 10)
	stderr, err := b.runGitTo(ctx, out, env, dir, token, args...)
	if err != nil {
		return stderr, err
	}
	return strings.TrimSpace(scrubSecret(string(out.Bytes()), token)), nil
}

func (b *Backend) runGitTo(ctx context.Context, stdout io.Writer, env []string, dir, token string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.cfg.GitBinary, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var kill *time.Timer
	var killMu sync.Mutex
	cmd.Cancel = func() error {
		// SIGKILL follows within the grace period, shortened to fit the
		// shutdown budget when the daemon is stopping.
		pid := cmd.Process.Pid
		killMu.Lock()
		kill = time.AfterFunc(b.shutdown.bound(b.cfg.KillGracePeriod, killStage), func() { _ = signalGroup(pid, syscall.SIGKILL) })
		killMu.Unlock()
		return signalGroup(pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = b.cfg.KillGracePeriod
	stderr := harness.NewTailBuffer(16 << 10)
	cmd.Stderr = stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	killMu.Lock()
	if kill != nil {
		kill.Stop()
	}
	killMu.Unlock()
	if cmd.Process != nil {
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL) // helpers left behind
	}
	return scrubSecret(string(stderr.Bytes()), token), err
}

// scrubSecret removes the token, in clear and in its header form, from text
// that may reach an event or a log.
func scrubSecret(text, token string) string {
	if token == "" {
		return text
	}
	text = strings.ReplaceAll(text, basicAuth(token), "[redacted]")
	return strings.ReplaceAll(text, token, "[redacted]")
}

// gitFailure classifies a failed git command from its (C locale) stderr.
// refusal, when set, is why the clone proxy refused a destination, which
// says more than git's "Received HTTP code 403 from proxy".
func gitFailure(ctx context.Context, doing, repoURL, stderr, refusal string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if refusal != "" {
		return &sessionFailure{Type: errorTypeRepoClone, RepositoryURL: repoURL,
			Message: fmt.Sprintf("%s %s failed: %s", doing, repoURL, cleanLine(refusal))}
	}
	detail := gitDetail(stderr)
	if detail == "" {
		detail = cleanLine(err.Error())
	}
	f := &sessionFailure{
		Type:          errorTypeRepoClone,
		Message:       fmt.Sprintf("%s %s failed: %s", doing, repoURL, detail),
		RepositoryURL: repoURL,
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		f.Message = fmt.Sprintf("%s %s: running git: %v", doing, repoURL, err)
		return f
	}
	lower := strings.ToLower(stderr)
	switch {
	case strings.Contains(lower, "remote branch") && strings.Contains(lower, "not found"):
		f.Type = errorTypeRepoCheckout
	case strings.Contains(lower, "authentication failed"),
		strings.Contains(lower, "could not read username"),
		strings.Contains(lower, "could not read password"),
		strings.Contains(lower, "returned error: 401"):
		f.Type = errorTypeRepoAuth
	case strings.Contains(lower, "returned error: 403"):
		f.Type = errorTypeRepoForbidden
	case strings.Contains(lower, "returned error: 404"),
		strings.Contains(lower, "repository not found"),
		strings.Contains(lower, "does not appear to be a git repository"):
		f.Type = errorTypeRepoNotFound
	}
	return f
}

// gitDetail is the last line of git's stderr that git itself wrote, which
// is where it says why, cleaned. Lines the server sent ("remote: …") are
// skipped: they are the remote's text, not git's.
func gitDetail(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(strings.TrimRight(lines[i], "\r"))
		if line == "" || strings.HasPrefix(strings.ToLower(line), "remote:") {
			continue
		}
		return cleanLine(line)
	}
	return ""
}

// cleanLine makes text one short printable line: control characters and
// invalid UTF-8 become spaces, runs of spaces one, and it is cut at
// maxGitDetail bytes on a rune boundary.
func cleanLine(text string) string {
	var sb strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(text, " ") {
		if unicode.IsControl(r) || r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			r = ' '
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		if sb.Len()+utf8.RuneLen(r) > maxGitDetail {
			return strings.TrimSpace(sb.String()) + "…"
		}
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}
