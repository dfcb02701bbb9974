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
	"strings"
	"syscall"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// gitPassthroughEnv are the daemon variables git may need to reach a remote
// (proxies, CA bundles). Everything else in git's environment is set here.
var gitPassthroughEnv = []string{
	"PATH", "HOME", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
	"NO_PROXY", "ALL_PROXY", "all_proxy", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

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
}

// cloneRepository clones spec.URL into spec.Dir and checks out the branch or
// commit. Failures are *sessionFailure with a repository_* type and a
// message scrubbed of the token.
func (b *Backend) cloneRepository(ctx context.Context, workspace string, spec cloneSpec) error {
	env := b.gitEnv(spec)
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
		return gitFailure(ctx, "reading the checked out commit of", spec.URL, head, err)
	}
	if !strings.HasPrefix(head, want) {
		return &sessionFailure{Type: errorTypeRepoCheckout, RepositoryURL: spec.URL,
			Message: fmt.Sprintf("checking out commit %s of %s gave commit %s instead (a tag or branch named %s?); "+
				"pin the full 40-hex commit sha", spec.Checkout.SHA, spec.URL, head, spec.Checkout.SHA)}
	}
	return nil
}

// gitEnv isolates git from the user's and system's git config (no
// credential helpers that could store the token, no prompts) and hands it
// the token as an http.extraHeader scoped to the repository's origin.
func (b *Backend) gitEnv(spec cloneSpec) []string {
	env := b.passthrough(gitPassthroughEnv)
	env = append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
	)
	if spec.Token == "" {
		return append(env, "GIT_ALLOW_PROTOCOL=http:https")
	}
	// git sends http.extraHeader to wherever a redirect leads, plain http
	// on another host included; with a token it follows no redirect and
	// speaks https only.
	u, _ := url.Parse(spec.URL) // validated by checkRepository
	origin := u.Scheme + "://" + u.Host + "/"
	return append(env,
		"GIT_ALLOW_PROTOCOL=https",
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=http."+origin+".extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+basicAuth(spec.Token),
		"GIT_CONFIG_KEY_1=http.followRedirects",
		"GIT_CONFIG_VALUE_1=false",
	)
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
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = b.cfg.KillGracePeriod
	stderr := harness.NewTailBuffer(16 << 10)
	cmd.Stderr = stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
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
func gitFailure(ctx context.Context, doing, repoURL, stderr string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	detail := lastLine(stderr)
	if detail == "" {
		detail = err.Error()
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

// lastLine is the last non-empty line of text, which is where git says why.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
