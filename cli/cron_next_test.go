package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/schedule"
)

// cronNow is the injected clock for `cron next` without --from.
func cronNow() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }

func TestCronNextGolden(t *testing.T) {
	cases := []struct {
		golden string
		args   []string
	}{
		{"berlin_weekdays", []string{"0 9 * * 1-5", "--tz", "Europe/Berlin"}},
		// 02:30 does not exist on 2026-03-29 in Berlin: the fire moves to 03:00 CEST.
		{"berlin_spring_forward", []string{"30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-27T12:00:00Z", "-n", "4"}},
		// 01:30 happens twice on 2026-11-01 in New York: a fixed time fires once.
		{"new_york_fall_back", []string{"30 1 * * *", "--tz", "America/New_York", "--from", "2026-10-30T12:00:00Z", "-n", "4"}},
		// An interval schedule follows the real clock through the repeated hour.
		// The same two under --dst-policy literal (the hosted API's matching):
		// 02:30 is not triggered on 2026-03-29, 01:30 fires twice on 2026-11-01.
		{"berlin_spring_forward_literal", []string{"30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-27T12:00:00Z", "-n", "4", "--dst-policy", "literal"}},
		{"new_york_fall_back_literal", []string{"30 1 * * *", "--tz", "America/New_York", "--from", "2026-10-30T12:00:00Z", "-n", "4", "--dst-policy", "literal"}},
		{"new_york_fall_back_interval", []string{"*/30 * * * *", "--tz", "America/New_York", "--from", "2026-11-01T04:40:00Z", "-n", "6"}},
		// Lord Howe moves its clocks by half an hour.
		{"lord_howe_half_hour_dst", []string{"15 2 * * *", "--tz", "Australia/Lord_Howe", "--from", "2026-10-02T00:00:00Z", "-n", "3"}},
		{"kolkata_monthly", []string{"0 9 1 * *", "--tz", "Asia/Kolkata", "-n", "3"}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			res := runCLI(t, cronNow, nil, nil, append([]string{"cron", "next"}, tc.args...)...)
			require.NoError(t, res.err)
			assertGolden(t, tc.golden, res.stdout)
		})
	}
}

func TestCronNextMatchesDaemonCode(t *testing.T) {
	res := runCLI(t, cronNow, nil, nil, "--json", "cron", "next", "30 2 * * *", "--tz", "Europe/Berlin",
		"--from", "2026-03-27T12:00:00Z", "-n", "4")
	require.NoError(t, res.err)
	var out cronPreview
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	assert.Equal(t, "30 2 * * *", out.Expression)
	assert.Equal(t, "Europe/Berlin", out.Timezone)
	assert.Equal(t, "2026-03-27T12:00:00Z", out.From)

	cron, err := schedule.Parse("30 2 * * *", "Europe/Berlin")
	require.NoError(t, err)
	var want []string
	for _, fire := range cron.Upcoming(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 4) {
		want = append(want, fire.Format(time.RFC3339))
	}
	assert.Equal(t, want, out.Upcoming)
	assert.Equal(t, "2026-03-29T01:00:00Z", out.Upcoming[1], "the skipped 02:30 fires at 03:00 CEST")
	assert.Equal(t, "once", out.DSTPolicy)

	res = runCLI(t, cronNow, nil, nil, "--json", "cron", "next", "30 2 * * *", "--tz", "Europe/Berlin",
		"--from", "2026-03-27T12:00:00Z", "-n", "4", "--dst-policy", "literal")
	require.NoError(t, res.err)
	out = cronPreview{}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	assert.Equal(t, "literal", out.DSTPolicy)
	literal, err := schedule.ParseWith("30 2 * * *", "Europe/Berlin", schedule.DSTLiteral)
	require.NoError(t, err)
	want = nil
	for _, fire := range literal.Upcoming(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 4) {
		want = append(want, fire.Format(time.RFC3339))
	}
	assert.Equal(t, want, out.Upcoming)
	assert.Equal(t, "2026-03-30T00:30:00Z", out.Upcoming[1], "literal: no fire on 2026-03-29, 02:30 CEST on the 30th is next")
}

func TestCronNextRejects(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		field   string // the schedule field a validation error must name
		message string
	}{
		{"four fields", []string{"0 9 * *", "--tz", "UTC"}, "schedule.expression", ""},
		{"seconds field", []string{"0 0 9 * * *", "--tz", "UTC"}, "schedule.expression", ""},
		{"shortcut", []string{"@daily", "--tz", "UTC"}, "schedule.expression", ""},
		{"out of range", []string{"0 25 * * *", "--tz", "UTC"}, "schedule.expression", ""},
		{"never fires", []string{"0 0 30 2 *", "--tz", "UTC"}, "schedule.expression", ""},
		{"unknown zone", []string{"0 9 * * *", "--tz", "Mars/Olympus_Mons"}, "schedule.timezone", ""},
		{"empty zone given", []string{"0 9 * * *", "--tz", ""}, "schedule.timezone", ""},
		{"count zero", []string{"0 9 * * *", "--tz", "UTC", "-n", "0"}, "", "-n: must be between 1 and 1000"},
		{"bad from", []string{"0 9 * * *", "--tz", "UTC", "--from", "tomorrow"}, "", "--from: must be an RFC 3339 timestamp"},
		{"bad dst policy", []string{"0 9 * * *", "--tz", "UTC", "--dst-policy", "twice"}, "", `--dst-policy: must be "once"`},
		// Only gap times (02:30 on the last Sunday of March): literal never fires it.
		{"never fires under literal", []string{"30 2 25-31 3 */7", "--tz", "Europe/Berlin", "--dst-policy", "literal"}, "schedule.expression", "schedule.dst_policy literal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cronNow, nil, nil, append([]string{"cron", "next"}, tc.args...)...)
			require.Error(t, res.err)
			assert.Empty(t, res.stdout)
			if tc.field != "" {
				var verr *schedule.ValidationError
				require.True(t, errors.As(res.err, &verr), "%T %v", res.err, res.err)
				assert.Equal(t, tc.field, verr.Field)
				assert.Contains(t, res.err.Error(), tc.field+": ", "the message names the field")
			}
			assert.Contains(t, res.err.Error(), tc.message)
		})
	}
}

// Without --tz the preview is in UTC and says so; --json names the zone.
func TestCronNextDefaultsToUTCAndSaysSo(t *testing.T) {
	res := runCLI(t, cronNow, nil, nil, "cron", "next", "0 9 * * *", "-n", "2")
	require.NoError(t, res.err)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 3, res.stdout)
	assert.Equal(t, "Timezone: UTC (default; give --tz ZONE for the schedule's zone)", lines[0])
	assert.Contains(t, lines[1], "2026-11-28")
	assert.Contains(t, lines[1], "09:00")

	withTZ := runCLI(t, cronNow, nil, nil, "cron", "next", "0 9 * * *", "-n", "2", "--tz", "UTC")
	require.NoError(t, withTZ.err)
	assert.NotContains(t, withTZ.stdout, "default", "an explicit zone needs no note")
	assert.Equal(t, strings.Join(lines[1:], "\n")+"\n", withTZ.stdout)

	js := runCLI(t, cronNow, nil, nil, "--json", "cron", "next", "0 9 * * *", "-n", "1")
	require.NoError(t, js.err)
	var out cronPreview
	require.NoError(t, json.Unmarshal([]byte(js.stdout), &out), js.stdout)
	assert.Equal(t, "UTC", out.Timezone)
}
