package deployments_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// runInstants lists the scheduled_at of a deployment's runs, oldest first,
// as full UTC instants.
func (w *world) runInstants(id string) []time.Time {
	w.t.Helper()
	page, err := w.svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: id, Limit: 1000})
	require.NoError(w.t, err)
	var out []time.Time
	for i := len(page.Items) - 1; i >= 0; i-- {
		if r := page.Items[i]; r.ScheduledAt != nil {
			out = append(out, r.ScheduledAt.UTC())
		}
	}
	return out
}

func utc(year int, month time.Month, day, hour, minute int) time.Time {
	return time.Date(year, month, day, hour, minute, 0, 0, time.UTC)
}

// The fire path and upcoming_runs_at follow schedule.dst_policy. Bubble time
// starts 2000-01-01; New York springs forward on 2000-04-02 (02:00 EST →
// 03:00 EDT at 07:00Z) and falls back on 2000-10-29 (02:00 EDT → 01:00 EST
// at 06:00Z, so 01:30 happens at 05:30Z and again at 06:30Z).
func TestSchedulerFollowsTheDSTPolicy(t *testing.T) {
	tests := []struct {
		policy     schedule.DSTPolicy
		spring     []time.Time // runs of "30 2 2 4 *" by 2000-11-01
		fall       []time.Time // runs of "30 1 29 10 *" by 2000-11-01
		fallShown  []time.Time // upcoming_runs_at of the fall deployment at creation
		springNext time.Time   // first upcoming of the spring deployment at creation
	}{
		{
			policy: schedule.DSTOnce,
			spring: []time.Time{utc(2000, 4, 2, 7, 0)}, // at the transition
			fall:   []time.Time{utc(2000, 10, 29, 5, 30)},
			fallShown: []time.Time{utc(2000, 10, 29, 5, 30), utc(2001, 10, 29, 6, 30), utc(2002, 10, 29, 6, 30),
				utc(2003, 10, 29, 6, 30), utc(2004, 10, 29, 5, 30)}, // 2004 fell back on 10-31
			springNext: utc(2000, 4, 2, 7, 0),
		},
		{
			policy: schedule.DSTLiteral,
			spring: nil, // 02:30 did not exist on 2000-04-02
			fall:   []time.Time{utc(2000, 10, 29, 5, 30), utc(2000, 10, 29, 6, 30)},
			fallShown: []time.Time{utc(2000, 10, 29, 5, 30), utc(2000, 10, 29, 6, 30), utc(2001, 10, 29, 6, 30),
				utc(2002, 10, 29, 6, 30), utc(2003, 10, 29, 6, 30)},
			springNext: utc(2001, 4, 2, 6, 30),
		},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "db")
				backend := sessionstest.New(map[string]int64{"agent_a": 1})
				// Day-long sleeps: the bubble never steps its clock.
				cfg := deployments.SchedulerConfig{MaxSleep: 24 * time.Hour}
				w := startWorldWithPolicy(t, path, backend, cfg, tt.policy)
				spring := w.create("30 2 2 4 *", "America/New_York")
				fall := w.create("30 1 29 10 *", "America/New_York")
				assert.Equal(t, tt.fallShown, w.svc.Upcoming(fall), "upcoming_runs_at")
				assert.Equal(t, tt.springNext, w.svc.Upcoming(spring)[0], "upcoming_runs_at")

				// Down between the two fall-back fires: the restart keeps the
				// identity (deployment, scheduled_at), so the first fire is not
				// repeated and, under literal, the second is still due.
				sleepUntil(utc(2000, 10, 29, 6, 0))
				w.stop()
				w = startWorldWithPolicy(t, path, backend, cfg, tt.policy)
				defer w.stop()
				sleepUntil(utc(2000, 11, 1, 0, 0))
				assert.Equal(t, tt.spring, w.runInstants(spring.ID))
				assert.Equal(t, tt.fall, w.runInstants(fall.ID), "under literal the two fall-back fires are distinct instants, so distinct fires")
			})
		})
	}
}

// Under literal, a fixed-time schedule whose only matches fall in a
// spring-forward gap would never fire: create and update refuse it with a
// 400 naming schedule.expression; under once it fires at the transition.
func TestCreateAndUpdateRefuseNeverFiringSchedulesUnderLiteral(t *testing.T) {
	const gapOnly = "30 2 8-14 3 */7" // 02:30 on the second Sunday of March
	body := createBody(gapOnly, "America/New_York")
	for _, policy := range []schedule.DSTPolicy{schedule.DSTOnce, schedule.DSTLiteral} {
		t.Run(policy.String(), func(t *testing.T) {
			w := startWorldWithPolicy(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}),
				deployments.SchedulerConfig{}, policy)
			defer w.stop()
			in, err := deployments.DecodeCreate(body)
			require.NoError(t, err, "decoding knows no policy: the body is valid")
			_, err = w.svc.Create(context.Background(), in)
			up, uerr := deployments.DecodeUpdate([]byte(`{"schedule":{"type":"cron","expression":"` + gapOnly + `","timezone":"America/New_York"}}`))
			require.NoError(t, uerr)
			d := w.create("0 9 * * *", "America/New_York")
			_, updateErr := w.svc.Update(context.Background(), d.ID, up)
			if policy == schedule.DSTOnce {
				require.NoError(t, err)
				require.NoError(t, updateErr)
				return
			}
			for _, err := range []error{err, updateErr} {
				var derr *deployments.Error
				require.True(t, errors.As(err, &derr), "%v", err)
				assert.Equal(t, deployments.KindInvalid, derr.Kind)
				assert.Equal(t, "schedule.expression", derr.Field)
				assert.Contains(t, derr.Message, "never fires")
				assert.Contains(t, derr.Message, "schedule.dst_policy")
			}
			got, err := w.svc.Get(context.Background(), d.ID)
			require.NoError(t, err)
			assert.Equal(t, "0 9 * * *", got.Schedule.Expression, "a refused update changes nothing")
		})
	}
}

// A schedule accepted under once whose only times are skipped by a gap
// (02:30 on the last Sunday of March in Berlin, the EU rule throughout)
// loads under literal without error, shows no upcoming_runs_at and never
// fires; under once it fires at the transition (2000-03-26 01:00Z).
func TestStoredScheduleWithoutFiresUnderLiteralLoadsAndNeverFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		backend := sessionstest.New(map[string]int64{"agent_a": 1})
		cfg := deployments.SchedulerConfig{MaxSleep: 24 * time.Hour}
		w := startWorldWithPolicy(t, path, backend, cfg, schedule.DSTOnce)
		d := w.create("30 2 25-31 3 */7", "Europe/Berlin")
		require.Equal(t, utc(2000, 3, 26, 1, 0), w.svc.Upcoming(d)[0])
		w.stop()

		w = startWorldWithPolicy(t, path, backend, cfg, schedule.DSTLiteral)
		defer w.stop()
		assert.Empty(t, w.svc.Upcoming(d), "no fire time under literal")
		sleepUntil(utc(2000, 3, 27, 0, 0))
		assert.Empty(t, w.runInstants(d.ID))
	})
}
