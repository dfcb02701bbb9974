package daemon

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// A host that cannot enforce a limit gets a WARN naming each one, why, and
// the way out; /readyz carries the same.
func TestUnenforcedLimitsWarn(t *testing.T) {
	var logs bytes.Buffer
	e := sandbox.Enforcement{OpenFiles: "rlimit",
		Problem: "no writable cgroup v1 hierarchy for memory, pids, cpu (uid 1000)"}
	logSessionLimits(slog.New(slog.NewTextHandler(&logs, nil)), e)
	assert.Contains(t, logs.String(), `level=WARN msg="local sessions' limits NOT ENFORCED: memory, processes, cpu;`)
	assert.Contains(t, logs.String(), "Delegate=yes")
	assert.Contains(t, logs.String(), `reason="no writable cgroup v1 hierarchy for memory, pids, cpu (uid 1000)"`)
	assert.Equal(t, map[string]string{"memory": "not enforced", "processes": "not enforced", "cpu": "not enforced",
		"open_files": "rlimit", "problem": e.Problem}, sessionLimitsDetail(e))
}
