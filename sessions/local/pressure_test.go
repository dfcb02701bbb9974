package local

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/sessions"
)

// A turn whose workspace grows over limits.workspace_bytes is stopped while
// it runs; the session ends with a session.error naming the limit and the
// environment.
func TestWorkspaceOverItsLimitStopsTheTurn(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_filler",
		// 4 MiB, then wait to be stopped: only the poll can end this turn.
		`head -c 4194304 /dev/zero > big && echo written && exec sleep 600`)}, func(c *Config) {
		c.Environments = []Environment{{ID: testEnvironment, Limits: Limits{WorkspaceBytes: 1 << 20}}}
	})
	rig.b.workspacePoll = 20 * time.Millisecond
	id := rig.create("agent_filler", nil)
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "limits.workspace_bytes")
	assert.Contains(t, message, "1048576 bytes")
	assert.Contains(t, message, "environment "+testEnvironment)
}

// A harness that writes past the limit and exits before a poll is caught
// at the turn's end; one under the limit ends its turn normally.
func TestWorkspaceLimitIsCheckedAtTurnEnd(t *testing.T) {
	rig := newRig(t, []Agent{
		shAgent("agent_big", `head -c 4194304 /dev/zero > big`),
		shAgent("agent_small", `head -c 65536 /dev/zero > small && echo done`),
	}, func(c *Config) {
		c.Environments = []Environment{{ID: testEnvironment, Limits: Limits{WorkspaceBytes: 1 << 20}}}
	})
	rig.b.workspacePoll = time.Hour
	big := rig.create("agent_big", nil)
	small := rig.create("agent_small", nil)
	assert.Equal(t, statusTerminated, rig.waitDone(big).Status)
	_, message := rig.sessionError(big)
	assert.Contains(t, message, "limits.workspace_bytes")
	assert.Equal(t, statusIdle, rig.waitDone(small).Status)
	assert.NotContains(t, rig.types(small), eventSessionError)
}

func TestWorkspaceUsageCountsBlocksAndStopsEarly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFile(dir+"/a", 256<<10))
	require.NoError(t, writeFile(dir+"/b", 256<<10))
	size, over := workspaceUsage(dir, -1)
	assert.False(t, over)
	assert.GreaterOrEqual(t, size, int64(512<<10))
	_, over = workspaceUsage(dir, 300<<10)
	assert.True(t, over)

	// Many empty files count a block each: a harness cannot hide behind
	// files that take no blocks, and the walk ends once over.
	many := t.TempDir()
	for i := range 300 {
		require.NoError(t, os.WriteFile(filepath.Join(many, strconv.Itoa(i)), nil, 0o600))
	}
	size, over = workspaceUsage(many, 100*minEntryBytes)
	assert.True(t, over)
	assert.LessOrEqual(t, size, int64(102*minEntryBytes), "the walk stopped once over")
}

func writeFile(path string, n int) error {
	return os.WriteFile(path, bytes.Repeat([]byte{'x'}, n), 0o600)
}

// fakeDisk is a disk guard the test turns low and back.
type fakeDisk struct {
	mu       sync.Mutex
	low      error
	observed []error
}

func (d *fakeDisk) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.low
}

func (d *fakeDisk) Observe(err error) {
	d.mu.Lock()
	d.observed = append(d.observed, err)
	d.mu.Unlock()
}

func (d *fakeDisk) set(err error) {
	d.mu.Lock()
	d.low = err
	d.mu.Unlock()
}

// Below the disk reserve a turn that writes output is stopped with a
// session.error that says how much is free and what the reserve is, the
// session goes idle, sends answer 507; once space returns the next message
// runs a turn.
func TestDiskBelowReserveStopsWritingTurnsUntilSpaceReturns(t *testing.T) {
	disk := &fakeDisk{}
	rig := newRig(t, []Agent{shAgent("agent_chatty",
		// The first turn says "first", waits for the test to create go,
		// then writes until it is stopped; the next turn only says "first".
		`while read -r line; do :; done; echo first; if [ -e stop ]; then exit 0; fi; touch stop; `+
			`while [ ! -e go ]; do sleep 0.01; done; while :; do echo more; sleep 0.01; done`)},
		func(c *Config) { c.Disk = disk })
	low := &diskspace.LowError{Path: "/data", Free: 100 << 20, Reserve: 256 << 20}
	id := rig.create("agent_chatty", nil)
	rig.waitForText(id, "first")
	disk.set(low)
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.WorkspaceDir, id, "go"), nil, 0o600))
	rec := rig.waitDone(id)
	assert.Equal(t, statusIdle, rec.Status, "a full disk is not the session's end")
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "the data directory's file system is nearly full: 100 MiB free, the disk.min_free reserve is 256 MiB")

	// An API write says the disk is full, with the error envelope.
	send := func() (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"events": []json.RawMessage{userMessage("again")}})
		resp, err := http.Post(rig.srv.URL+"/v1/sessions/"+id+"/events", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(data, &out)
		return resp.StatusCode, out
	}
	status, out := send()
	assert.Equal(t, http.StatusInsufficientStorage, status)
	assert.Contains(t, out["error"].(map[string]any)["message"], "nearly full")

	disk.set(nil)
	status, _ = send()
	require.Equal(t, http.StatusOK, status, "writes resume once space returns")
	rec = rig.waitDone(id)
	assert.Equal(t, statusIdle, rec.Status)
	texts := rig.texts(id)
	assert.Equal(t, "first", texts[len(texts)-1], "the next turn ran")
}

// A deployment's fire while the disk is below its reserve is refused as a
// transient rejection naming the disk, so the schedule keeps firing.
func TestFireWhileDiskLowIsATransientRejection(t *testing.T) {
	disk := &fakeDisk{}
	rig := newRig(t, []Agent{shAgent("agent_ok", "echo ok")}, func(c *Config) { c.Disk = disk })
	disk.set(&diskspace.LowError{Path: "/data", Free: 1 << 20, Reserve: 256 << 20})
	_, err := rig.b.CreateSession(t.Context(), rig.request("agent_ok", nil))
	var re *sessions.RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, sessions.ErrSessionCreationRejected, re.Type)
	assert.False(t, re.Type.PausesDeployment())
	assert.Contains(t, re.Message, "nearly full: 1 MiB free")
}

// Below the disk reserve an interrupt is still taken: it stops work.
func TestInterruptIsTakenBelowTheDiskReserve(t *testing.T) {
	disk := &fakeDisk{}
	rig := newRig(t, []Agent{shAgent("agent_wait", `echo started; exec sleep 600`)}, func(c *Config) { c.Disk = disk })
	id := rig.create("agent_wait", nil)
	rig.waitForText(id, "started")
	disk.set(&diskspace.LowError{Path: "/data", Free: 1 << 20, Reserve: 256 << 20})
	body, _ := json.Marshal(map[string]any{"events": []any{map[string]any{"type": "user.interrupt"}}})
	resp, err := http.Post(rig.srv.URL+"/v1/sessions/"+id+"/events", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, statusIdle, rig.waitDone(id).Status)
}
