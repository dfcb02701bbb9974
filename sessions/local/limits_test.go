package local

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tickingClock returns strictly increasing instants, one millisecond apart,
// so the order of recorded timestamps is the order of events.
type tickingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

const blockingScript = `echo "ready $$"; sleep 1000 & wait`

func TestTimeoutTerminatesTheSession(t *testing.T) {
	t.Parallel() // it mostly waits out the timeout
	rig := newRig(t, []Agent{shAgent("agent_slow", blockingScript)}, func(c *Config) {
		c.Environments = []Environment{{ID: testEnvironment, Timeout: 300 * time.Millisecond}}
	})
	id := rig.create("agent_slow", nil)
	rec := rig.waitDone(id)

	assert.Equal(t, statusTerminated, rec.Status)
	types := rig.types(id)
	assert.Equal(t, []string{eventSessionError, eventStatusTerminated}, types[len(types)-2:])
	errType, message := rig.sessionError(id)
	assert.Equal(t, errorTypeUnknown, errType)
	assert.Equal(t, "the turn exceeded its timeout of 300ms (environment env_test)", message)
}

func TestOutputCapStopsTheHarness(t *testing.T) {
	const limit = 1000
	// 21 bytes a line; the harness would go on printing and then linger.
	rig := newRig(t, []Agent{shAgent("agent_chatty",
		`i=0; while [ $i -lt 500 ]; do i=$((i+1)); printf 'line %015d\n' $i; done; exec sleep 1000`)},
		func(c *Config) {
			c.Environments = []Environment{{ID: testEnvironment, MaxOutputBytes: limit}}
		})
	id := rig.create("agent_chatty", nil)
	rec := rig.waitDone(id)

	assert.Equal(t, statusTerminated, rec.Status)
	errType, message := rig.sessionError(id)
	assert.Equal(t, errorTypeUnknown, errType)
	assert.Contains(t, message, "stored more than 1000 bytes of events (max_output_bytes of environment env_test)")
	// The cap counts what is stored: each event's JSON plus its overhead.
	stored := 0
	for _, ev := range rig.events(id) {
		if ev.Type == eventAgentMessage {
			stored += len(ev.JSON) + eventOverheadBytes
		}
	}
	assert.LessOrEqual(t, stored, limit, "only output within the cap is recorded")
	assert.Greater(t, stored+200, limit, "every event within the cap is recorded")
}

func TestConcurrencyLimitQueuesInsteadOfFailing(t *testing.T) {
	clock := &tickingClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript), shAgent("agent_quick", `echo done`)},
		func(c *Config) {
			c.MaxConcurrentSessions = 1
			c.Now = clock.Now
		})
	first := rig.create("agent_block", nil)
	rig.waitForText(first, "ready ")

	// The slot is taken: further fires are accepted and wait, in order.
	second := rig.create("agent_quick", nil)
	third := rig.create("agent_quick", nil)
	for _, id := range []string{second, third} {
		sess, err := rig.client.Beta.Sessions.Get(t.Context(), id, anthropic.BetaSessionGetParams{})
		require.NoError(t, err)
		assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusRescheduling, sess.Status)
		assert.Equal(t, []string{eventUserMessage, eventStatusRescheduled}, rig.types(id))
		assert.NoDirExists(t, filepath.Join(rig.cfg.WorkspaceDir, id), "a queued session has no workspace yet")
	}

	_, err := rig.b.interrupt(first)
	require.NoError(t, err)
	recFirst, recSecond, recThird := rig.waitDone(first), rig.waitDone(second), rig.waitDone(third)

	assert.Equal(t, statusIdle, recSecond.Status)
	assert.Equal(t, statusIdle, recThird.Status)
	assert.Equal(t, []string{eventUserMessage, eventStatusRescheduled, eventStatusRunning, eventAgentMessage, eventStatusIdle},
		rig.types(second))
	assert.True(t, recSecond.StartedAt.After(*recFirst.TurnEndedAt), "the queued session starts once the slot is free")
	assert.True(t, recThird.StartedAt.After(*recSecond.TurnEndedAt), "queued sessions run one at a time, oldest first")
}

func TestInterruptWhileQueued(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript)},
		func(c *Config) { c.MaxConcurrentSessions = 1 })
	first := rig.create("agent_block", nil)
	rig.waitForText(first, "ready ")
	queued := rig.create("agent_block", nil)

	_, err := rig.b.interrupt(queued)
	require.NoError(t, err)
	rec := rig.waitDone(queued)
	assert.Equal(t, statusIdle, rec.Status, "an interrupt returns control to the user")
	assert.Equal(t, []string{eventUserMessage, eventStatusRescheduled, eventUserInterrupt, eventStatusIdle}, rig.types(queued))
	assert.Nil(t, rec.StartedAt, "it never ran")
	assert.Equal(t, statusRunning, mustGet(t, rig, first).Status, "the running session is untouched")
}

func mustGet(t *testing.T, rig *testRig, id string) *sessionRecord {
	t.Helper()
	rec, err := rig.b.store.get(id)
	require.NoError(t, err)
	return rec
}

func TestArchiveRefusedWhileRunningDeleteStopsTheTurn(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript)}, nil)
	id := rig.create("agent_block", nil)
	ready := rig.waitForText(id, "ready ")
	pid, err := strconv.Atoi(strings.TrimPrefix(ready, "ready "))
	require.NoError(t, err)
	ctx := t.Context()
	workspace := filepath.Join(rig.cfg.WorkspaceDir, id)
	require.DirExists(t, workspace)

	_, err = rig.client.Beta.Sessions.Archive(ctx, id, anthropic.BetaSessionArchiveParams{})
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "user.interrupt")
	assert.Equal(t, "false", apiErr.Response.Header.Get("x-should-retry"))
	assert.DirExists(t, workspace)

	// Deleting a session in a turn stops the turn's processes first.
	deleted, err := rig.client.Beta.Sessions.Delete(ctx, id, anthropic.BetaSessionDeleteParams{})
	require.NoError(t, err)
	assert.Equal(t, id, deleted.ID)
	assert.Equal(t, "session_deleted", string(deleted.Type))
	assert.NoDirExists(t, workspace)
	assert.True(t, processGone(pid), "the turn's harness is stopped")

	_, err = rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	require.NoError(t, rig.ns.View(func(tx *store.NamespaceTx) error {
		left := 0
		tx.Bucket(bucketEvents).Scan(eventPrefix(id), nil, false, func(_, _ []byte) bool { left++; return true })
		assert.Zero(t, left, "the events are deleted with the session")
		return nil
	}))
}

func TestHarnessExitStatusAndStderr(t *testing.T) {
	rig := newRig(t, []Agent{
		shAgent("agent_fails", `echo working; echo "boom: config missing" >&2; exit 3`),
		{ID: "agent_missing", Version: 1, Command: []string{"/nonexistent/harness"}},
	}, nil)

	id := rig.create("agent_fails", nil)
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	assert.Equal(t, []string{eventUserMessage, eventStatusRunning, eventAgentMessage, eventSessionError, eventStatusTerminated},
		rig.types(id))
	_, message := rig.sessionError(id)
	assert.Equal(t, "the harness exited with status 3; stderr: boom: config missing", message)
	tail, err := rig.b.StderrTail(id)
	require.NoError(t, err)
	assert.Equal(t, "boom: config missing\n", string(tail))

	id = rig.create("agent_missing", nil)
	rig.waitDone(id)
	_, message = rig.sessionError(id)
	assert.Contains(t, message, `starting "/nonexistent/harness"`)
}

// TestHarnessSeesItsEnvironment: agent, environment and vault variables
// in their order of precedence. The vaults opted out of projection (this
// rig has no sandbox, so projected ones could not run): the harness holds
// the real values, and what it prints of them is stored redacted.
func TestHarnessSeesItsEnvironment(t *testing.T) {
	dir := t.TempDir()
	vaultFile := filepath.Join(dir, "vault.env")
	require.NoError(t, os.WriteFile(vaultFile, []byte("# secrets\nAPI_KEY=\"from-vault\"\nSHARED=vault\n"), 0o600))
	credDir := filepath.Join(dir, "creds")
	require.NoError(t, os.Mkdir(credDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(credDir, "gh"), []byte("export GH_TOKEN=from-credential\n"), 0o600))
	t.Setenv("SANDBOX0D_API_KEYS", "daemon-secret") // the daemon's own config never reaches a harness

	rig := newRig(t, []Agent{{ID: "agent_env", Version: 1, Env: map[string]string{"SHARED": "agent", "FROM_AGENT": "a"},
		Command: []string{"/bin/sh", "-c", `for v in FROM_AGENT FROM_ENV SHARED API_KEY GH_TOKEN SANDBOX0D_API_KEYS ` +
			`SANDBOX0D_DEPLOYMENT_ID SANDBOX0D_RUN_ID SANDBOX0D_PROMPT; do eval "echo $v=\${$v:-unset}"; done; pwd`}}},
		func(c *Config) {
			c.Environments = []Environment{{ID: testEnvironment, Env: map[string]string{"FROM_ENV": "e", "SHARED": "env"}}}
			c.Vaults = []Vault{{ID: "vlt_file", File: vaultFile, Raw: true}, {ID: "vlt_cred", Credential: "gh", Raw: true}}
			c.CredentialsDir = credDir
		})
	id := rig.create("agent_env", func(req *sessions.CreateRequest) { req.VaultIDs = []string{"vlt_file", "vlt_cred"} })
	rig.waitDone(id)
	assert.Equal(t, []string{"FROM_AGENT=a", "FROM_ENV=e", "SHARED=vault", "API_KEY=[redacted:API_KEY]",
		"GH_TOKEN=[redacted:GH_TOKEN]", "SANDBOX0D_API_KEYS=unset", "SANDBOX0D_DEPLOYMENT_ID=depl_test",
		"SANDBOX0D_RUN_ID=drun_test", "SANDBOX0D_PROMPT=hello from the deployment",
		filepath.Join(rig.cfg.WorkspaceDir, id)}, rig.texts(id))
	assert.NotContains(t, rig.logs.String(), "from-vault", "vault values are never logged")
}
