package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// In cluster mode sessions carry their node and the table shows it (issue
// 26); one box shows no NODE column.
func TestSessionTableNodeColumn(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	one := []session{{ID: "sesn_1", Status: "idle", CreatedAt: now, UpdatedAt: now}}
	var buf bytes.Buffer
	require.NoError(t, writeSessionTable(&buf, one, now))
	assert.NotContains(t, buf.String(), "NODE")

	clustered := []session{{ID: "sesn_1", Status: "idle", Node: "node-a", CreatedAt: now, UpdatedAt: now},
		{ID: "sesn_2", Status: "running", Node: "node-b", CreatedAt: now, UpdatedAt: now}}
	buf.Reset()
	require.NoError(t, writeSessionTable(&buf, clustered, now))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, []string{"ID", "STATUS", "NODE", "AGENT"}, strings.Fields(lines[0])[:4])
	assert.Equal(t, "node-a", strings.Fields(lines[1])[2])
	assert.Equal(t, "node-b", strings.Fields(lines[2])[2])
}
