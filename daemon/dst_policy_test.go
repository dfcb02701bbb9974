package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// schedule.dst_policy reaches the API: upcoming_runs_at and the never-fires
// check on create follow it, through the official SDK.
func TestDSTPolicyConfigReachesTheAPI(t *testing.T) {
	t.Parallel()
	// 01:30 on the first Sunday of November, the US fall-back day since
	// 2007: 01:30 happens twice there.
	const fallBack = "30 1 1-7 11 */7"
	// 02:30 on the second Sunday of March, the US spring-forward day: 02:30
	// never happens there.
	const gapOnly = "30 2 8-14 3 */7"
	for _, policy := range []string{"once", "literal"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(t.TempDir())
			cfg.Schedule.DSTPolicy = policy
			r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
			c := r.client()

			params := createParams("fall-back")
			params.Schedule = anthropic.BetaManagedAgentsScheduleParams{Expression: fallBack, Timezone: "America/New_York"}
			d, err := c.Beta.Deployments.New(t.Context(), params)
			require.NoError(t, err)
			upcoming := d.Schedule.UpcomingRunsAt
			require.GreaterOrEqual(t, len(upcoming), 2)
			first, second := upcoming[0], upcoming[1]
			if policy == "literal" {
				assert.Equal(t, time.Hour, second.Sub(first), "literal: both 01:30s of the fall-back day, %v", upcoming)
			} else {
				assert.Equal(t, first.Year()+1, second.Year(), "once: one 01:30 a year, %v", upcoming)
			}

			params.Schedule.Expression = gapOnly
			_, err = c.Beta.Deployments.New(t.Context(), params)
			if policy == "once" {
				require.NoError(t, err, "once fires it at the transition")
				return
			}
			apiErr := requireAPIError(t, err, http.StatusBadRequest)
			assert.Contains(t, apiErr.RawJSON(), "schedule.expression")
			assert.Contains(t, apiErr.RawJSON(), "never fires")
			assert.Contains(t, apiErr.RawJSON(), "schedule.dst_policy")
		})
	}
}

func TestDSTPolicyConfigKey(t *testing.T) {
	t.Parallel()
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\n"))
	require.NoError(t, err)
	assert.Equal(t, "once", cfg.Schedule.DSTPolicy, "the default")

	cfg, err = daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "schedule:\n  dst_policy: literal\n"))
	require.NoError(t, err, "the strict-key checker knows schedule.dst_policy")
	assert.Equal(t, "literal", cfg.Schedule.DSTPolicy)

	file := writeConfig(t, "schedule:\n  dst_policy: twice\n")
	_, err = daemon.LoadConfig(newViperWithFlags(t), file)
	var ce *daemon.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "schedule.dst_policy", ce.Key)
	assert.Contains(t, err.Error(), `"once"`)
	assert.Contains(t, err.Error(), `"literal"`)
	assert.Contains(t, err.Error(), `got "twice"`)

	file = writeConfig(t, "schedule:\n  dst_polcy: literal\n")
	_, err = daemon.LoadConfig(newViperWithFlags(t), file)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "schedule.dst_polcy", ce.Key)
	assert.Contains(t, err.Error(), "did you mean schedule.dst_policy?")
}

// Environment, as for every key (not parallel: Setenv).
func TestDSTPolicyFromEnvironment(t *testing.T) {
	t.Setenv("SANDBOX0D_SCHEDULE_DST_POLICY", "literal")
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte("schedule:\n  dst_policy: once\n"), 0o600))
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, "literal", cfg.Schedule.DSTPolicy, "env beats file")
	assert.Empty(t, cfg.Warnings, "a known key's variable does not warn")
}

// A Config built in code without the key (or an empty value) is the
// default, once.
func TestEmptyDSTPolicyIsTheDefault(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t.TempDir())
	assert.Equal(t, "once", cfg.Schedule.Policy().String())
	var ce *daemon.ConfigError
	if err := cfg.Validate(); err != nil {
		require.ErrorAs(t, err, &ce)
		assert.NotEqual(t, "schedule.dst_policy", ce.Key, "empty is accepted")
	}
	cfg.Schedule.DSTPolicy = "Literal" // spelled exactly
	require.ErrorAs(t, cfg.Validate(), &ce)
	assert.Equal(t, "schedule.dst_policy", ce.Key)
}
