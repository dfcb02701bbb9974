package httpapi_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

func newParams(name string) anthropic.BetaDeploymentNewParams {
	return anthropic.BetaDeploymentNewParams{
		Name:          name,
		Agent:         anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt("agent_a")},
		EnvironmentID: "env_1",
		InitialEvents: []anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion{userMessage("summarise the day")},
	}
}

func TestSDKEveryEndpoint(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	params := newParams("daily-digest")
	params.Description = param.NewOpt("what it does")
	params.Metadata = map[string]string{"team": "infra"}
	params.VaultIDs = []string{"vlt_1"}
	params.Schedule = anthropic.BetaManagedAgentsScheduleParams{Expression: "0 9 * * 1-5", Timezone: "Europe/Berlin"}
	params.Resources = []anthropic.BetaDeploymentNewParamsResourceUnion{{
		OfGitHubRepository: &anthropic.BetaManagedAgentsGitHubRepositoryResourceParams{
			URL: "https://github.com/acme/repo", AuthorizationToken: "ghp_topsecret_123",
			MountPath: param.NewOpt("/workspace/repo"),
		},
	}}

	created, err := e.client.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	assert.Regexp(t, `^depl_[0-9A-Za-z]{24,}$`, created.ID, "ids use the official alphabet: letters and digits")
	assert.Equal(t, "daily-digest", created.Name)
	assert.Equal(t, "what it does", created.Description)
	assert.Equal(t, int64(3), created.Agent.Version, "a string agent pins the latest version")
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("active"), created.Status)
	assert.Equal(t, "0 9 * * 1-5", created.Schedule.Expression)
	assert.Equal(t, "Europe/Berlin", created.Schedule.Timezone)
	assert.Len(t, created.Schedule.UpcomingRunsAt, 5)
	assert.False(t, created.Schedule.JSON.LastRunAt.Valid() && !created.Schedule.LastRunAt.IsZero())
	require.Len(t, created.Resources, 1)
	assert.Equal(t, "https://github.com/acme/repo", created.Resources[0].URL)
	assert.NotContains(t, created.RawJSON(), "ghp_topsecret_123")
	assert.NotContains(t, created.RawJSON(), "authorization_token")
	assert.Equal(t, map[string]string{"team": "infra"}, created.Metadata)

	got, err := e.client.Beta.Deployments.Get(ctx, created.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.JSONEq(t, created.RawJSON(), got.RawJSON())

	updated, err := e.client.Beta.Deployments.Update(ctx, created.ID, anthropic.BetaDeploymentUpdateParams{
		Name: param.NewOpt("renamed"),
	})
	require.NoError(t, err)
	assert.Equal(t, "renamed", updated.Name)
	assert.Equal(t, "what it does", updated.Description, "absent fields are kept")
	assert.NotContains(t, updated.RawJSON(), "ghp_topsecret_123")

	paused, err := e.client.Beta.Deployments.Pause(ctx, created.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("paused"), paused.Status)
	assert.Equal(t, "manual", paused.PausedReason.Type)
	assert.Len(t, paused.Schedule.UpcomingRunsAt, 5, "paused deployments still show what the schedule would do")

	unpaused, err := e.client.Beta.Deployments.Unpause(ctx, created.ID, anthropic.BetaDeploymentUnpauseParams{})
	require.NoError(t, err)
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("active"), unpaused.Status)
	assert.False(t, unpaused.JSON.PausedReason.Valid() && unpaused.PausedReason.Type != "")

	run, err := e.client.Beta.Deployments.Run(ctx, created.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Regexp(t, `^drun_[0-9A-Za-z]{24,}$`, run.ID)
	assert.Regexp(t, `^drun_`, run.ID)
	assert.Equal(t, created.ID, run.DeploymentID)
	assert.Equal(t, "manual", run.TriggerContext.Type)
	assert.Equal(t, "sesn_test000001", run.SessionID)
	assert.Equal(t, int64(3), run.Agent.Version)
	reqs := e.backend.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "ghp_topsecret_123", reqs[0].Resources[0].AuthorizationToken, "the backend receives the decrypted token")
	assert.Equal(t, "/workspace/repo", reqs[0].Resources[0].MountPath)
	assert.Equal(t, run.ID, reqs[0].RunID)

	gotRun, err := e.client.Beta.DeploymentRuns.Get(ctx, run.ID, anthropic.BetaDeploymentRunGetParams{})
	require.NoError(t, err)
	assert.JSONEq(t, run.RawJSON(), gotRun.RawJSON())

	runs, err := e.client.Beta.DeploymentRuns.List(ctx, anthropic.BetaDeploymentRunListParams{DeploymentID: param.NewOpt(created.ID)})
	require.NoError(t, err)
	require.Len(t, runs.Data, 1)
	assert.Equal(t, run.ID, runs.Data[0].ID)

	list, err := e.client.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)

	archived, err := e.client.Beta.Deployments.Archive(ctx, created.ID, anthropic.BetaDeploymentArchiveParams{})
	require.NoError(t, err)
	assert.False(t, archived.ArchivedAt.IsZero())
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("active"), archived.Status)
	assert.Empty(t, archived.Schedule.UpcomingRunsAt, "archived deployments have no upcoming runs")

	list, err = e.client.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	assert.Empty(t, list.Data, "archived deployments are hidden")
	list, err = e.client.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{IncludeArchived: param.NewOpt(true)})
	require.NoError(t, err)
	assert.Len(t, list.Data, 1)

	for name, call := range map[string]func() error{
		"update": func() error {
			_, err := e.client.Beta.Deployments.Update(ctx, created.ID, anthropic.BetaDeploymentUpdateParams{Name: param.NewOpt("x")})
			return err
		},
		"pause": func() error {
			_, err := e.client.Beta.Deployments.Pause(ctx, created.ID, anthropic.BetaDeploymentPauseParams{})
			return err
		},
		"unpause": func() error {
			_, err := e.client.Beta.Deployments.Unpause(ctx, created.ID, anthropic.BetaDeploymentUnpauseParams{})
			return err
		},
		"run": func() error {
			_, err := e.client.Beta.Deployments.Run(ctx, created.ID, anthropic.BetaDeploymentRunParams{})
			return err
		},
	} {
		err := call()
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr, name)
		assert.Equal(t, 409, apiErr.StatusCode, name)
		assert.Equal(t, "false", apiErr.Response.Header.Get("x-should-retry"), name)
	}
}

func TestSDKTriStateUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := newParams("tri")
	p.Description = param.NewOpt("desc")
	p.Metadata = map[string]string{"a": "1", "b": "2"}
	p.VaultIDs = []string{"vlt_1", "vlt_2"}
	p.Schedule = anthropic.BetaManagedAgentsScheduleParams{Expression: "*/5 * * * *", Timezone: "UTC"}
	d, err := e.client.Beta.Deployments.New(ctx, p)
	require.NoError(t, err)

	// Absent keeps everything.
	same, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{})
	require.NoError(t, err)
	assert.Equal(t, "desc", same.Description)
	assert.Equal(t, "*/5 * * * *", same.Schedule.Expression)
	assert.Equal(t, []string{"vlt_1", "vlt_2"}, same.VaultIDs)

	// description:null clears; schedule:null makes it manual-only; metadata
	// key set to null is deleted, another upserted.
	cleared, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{
		Description: param.Null[string](),
		Schedule:    param.NullStruct[anthropic.BetaManagedAgentsScheduleParams](),
		Metadata:    map[string]string{"c": "3"},
	}, option.WithJSONSet("metadata.a", nil))
	require.NoError(t, err)
	assert.Contains(t, cleared.RawJSON(), `"description":null`)
	assert.Contains(t, cleared.RawJSON(), `"schedule":null`)
	assert.Equal(t, map[string]string{"b": "2", "c": "3"}, cleared.Metadata)

	// description:"" also clears; vault_ids:[] clears; agent pinned explicitly.
	again, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{
		Description: param.NewOpt(""),
		VaultIDs:    []string{},
		Agent: anthropic.BetaDeploymentUpdateParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{
			ID: "agent_b", Version: param.NewOpt(int64(1))}},
	}, option.WithJSONSet("vault_ids", []string{}))
	require.NoError(t, err)
	assert.Contains(t, again.RawJSON(), `"description":null`)
	assert.Empty(t, again.VaultIDs)
	assert.Equal(t, "agent_b", again.Agent.ID)

	// vault_ids:null clears too; resources:null clears; schedule set again.
	_, err = e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{VaultIDs: []string{"vlt_3"}})
	require.NoError(t, err)
	nulled, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{
		Schedule: anthropic.BetaManagedAgentsScheduleParams{Expression: "0 0 * * *", Timezone: "Asia/Kolkata"},
	}, option.WithJSONSet("vault_ids", nil), option.WithJSONSet("resources", nil))
	require.NoError(t, err)
	assert.Empty(t, nulled.VaultIDs)
	assert.Equal(t, "0 0 * * *", nulled.Schedule.Expression)
	assert.Equal(t, "Asia/Kolkata", nulled.Schedule.Timezone)

	// Required fields cannot be cleared.
	for _, f := range []string{"name", "agent", "environment_id", "initial_events"} {
		status, body, _ := e.raw("POST", "/v1/deployments/"+d.ID, map[string]any{f: nil})
		assert.Equal(t, 400, status, f)
		assert.Contains(t, errMessage(body), f, f)
	}
}

func TestSDKTokenIsDroppedWhenUpdatedWithoutIt(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := newParams("tok")
	repo := func(token string) []anthropic.BetaDeploymentUpdateParamsResourceUnion {
		return []anthropic.BetaDeploymentUpdateParamsResourceUnion{{OfGitHubRepository: &anthropic.BetaManagedAgentsGitHubRepositoryResourceParams{
			URL: "https://github.com/acme/repo", AuthorizationToken: token}}}
	}
	d, err := e.client.Beta.Deployments.New(ctx, p)
	require.NoError(t, err)
	_, err = e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{Resources: repo("ghp_first")})
	require.NoError(t, err)
	_, err = e.client.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	_, err = e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{Resources: repo("")})
	require.NoError(t, err)
	_, err = e.client.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := e.backend.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "ghp_first", reqs[0].Resources[0].AuthorizationToken)
	assert.Empty(t, reqs[1].Resources[0].AuthorizationToken, "a resource updated without a token drops it")
}

func TestSDKAutoPagingWithConcurrentInserts(t *testing.T) {
	t.Parallel() // runs while TestRequestLevelErrors waits out its close
	e := newEnv(t)
	ctx := t.Context()
	var ids []string
	for i := range 250 {
		d, err := e.svc.Create(ctx, mustDecode(t, fmt.Sprintf("d%03d", i)))
		require.NoError(t, err)
		ids = append(ids, d.ID)
	}
	seen := map[string]int{}
	var inserted []string
	pager := e.client.Beta.Deployments.ListAutoPaging(ctx, anthropic.BetaDeploymentListParams{Limit: param.NewOpt(int64(30))})
	n := 0
	for pager.Next() {
		seen[pager.Current().ID]++
		n++
		if n%30 == 0 { // between pages, insert newer deployments
			d, err := e.svc.Create(ctx, mustDecode(t, fmt.Sprintf("late%d", n)))
			require.NoError(t, err)
			inserted = append(inserted, d.ID)
		}
	}
	require.NoError(t, pager.Err())
	for _, id := range ids {
		assert.Equal(t, 1, seen[id], "every pre-existing deployment exactly once: %s", id)
	}
	for id, c := range seen {
		assert.Equal(t, 1, c, "no duplicates: %s", id)
	}
	assert.NotEmpty(t, inserted)

	// 300 runs, paged by 25 with manual runs inserted between pages: twelve
	// page boundaries, as with the 1,200 by 100 this was, at a quarter of
	// the runs (recording them was most of the test's time).
	d := ids[0]
	var runIDs []string
	for range 300 {
		r, err := e.svc.RunNow(ctx, d)
		require.NoError(t, err)
		runIDs = append(runIDs, r.ID)
	}
	seenRuns := map[string]int{}
	runPager := e.client.Beta.DeploymentRuns.ListAutoPaging(ctx, anthropic.BetaDeploymentRunListParams{Limit: param.NewOpt(int64(25))})
	n = 0
	for runPager.Next() {
		seenRuns[runPager.Current().ID]++
		n++
		if n%25 == 0 {
			_, err := e.svc.RunNow(ctx, ids[1])
			require.NoError(t, err)
		}
	}
	require.NoError(t, runPager.Err())
	for _, id := range runIDs {
		assert.Equal(t, 1, seenRuns[id])
	}
	assert.Len(t, seenRuns, 300, "runs created after paging started are newer and not part of this walk")
}

func TestSDKListFilters(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a1, err := e.client.Beta.Deployments.New(ctx, newParams("a1"))
	require.NoError(t, err)
	pb := newParams("b1")
	pb.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt("agent_b")}
	b1, err := e.client.Beta.Deployments.New(ctx, pb)
	require.NoError(t, err)
	a2, err := e.client.Beta.Deployments.New(ctx, newParams("a2"))
	require.NoError(t, err)
	_, err = e.client.Beta.Deployments.Pause(ctx, a2.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)

	names := func(p anthropic.BetaDeploymentListParams) []string {
		page, err := e.client.Beta.Deployments.List(ctx, p)
		require.NoError(t, err)
		var out []string
		for _, d := range page.Data {
			out = append(out, d.Name)
		}
		return out
	}
	assert.Equal(t, []string{"a2", "b1", "a1"}, names(anthropic.BetaDeploymentListParams{}), "newest first")
	assert.Equal(t, []string{"a2", "a1"}, names(anthropic.BetaDeploymentListParams{AgentID: param.NewOpt("agent_a")}))
	assert.Equal(t, []string{"a2"}, names(anthropic.BetaDeploymentListParams{Status: "paused"}))
	assert.Equal(t, []string{"b1", "a1"}, names(anthropic.BetaDeploymentListParams{Status: "active"}))
	assert.Equal(t, []string{"b1", "a1"}, names(anthropic.BetaDeploymentListParams{CreatedAtLte: param.NewOpt(b1.CreatedAt)}))
	assert.Equal(t, []string{"a2", "b1"}, names(anthropic.BetaDeploymentListParams{CreatedAtGte: param.NewOpt(b1.CreatedAt)}))
	assert.Equal(t, []string{"a1"}, names(anthropic.BetaDeploymentListParams{CreatedAtLte: param.NewOpt(a1.CreatedAt)}))
	farFuture := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	assert.Len(t, names(anthropic.BetaDeploymentListParams{CreatedAtLte: param.NewOpt(farFuture)}), 3, "a far-future bound includes everything")

	// Runs: trigger type, has_error, time ranges, unknown deployment.
	ok, err := e.client.Beta.Deployments.Run(ctx, a1.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	e.backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "env gone"})
	failed, err := e.client.Beta.Deployments.Run(ctx, a1.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err, "a failed manual run is still a 200 carrying the error")
	assert.Equal(t, "environment_not_found_error", failed.Error.Type)
	assert.Empty(t, failed.SessionID)
	after, err := e.client.Beta.Deployments.Get(ctx, a1.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("active"), after.Status, "manual runs never pause")

	runIDs := func(p anthropic.BetaDeploymentRunListParams) []string {
		page, err := e.client.Beta.DeploymentRuns.List(ctx, p)
		require.NoError(t, err)
		var out []string
		for _, r := range page.Data {
			out = append(out, r.ID)
		}
		return out
	}
	assert.Equal(t, []string{failed.ID, ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{}))
	assert.Equal(t, []string{failed.ID}, runIDs(anthropic.BetaDeploymentRunListParams{HasError: param.NewOpt(true)}))
	assert.Equal(t, []string{ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{HasError: param.NewOpt(false)}))
	assert.Equal(t, []string{failed.ID, ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{TriggerType: "manual"}))
	assert.Empty(t, runIDs(anthropic.BetaDeploymentRunListParams{TriggerType: "schedule"}))
	assert.Empty(t, runIDs(anthropic.BetaDeploymentRunListParams{DeploymentID: param.NewOpt("depl_unknown")}))
	assert.Equal(t, []string{failed.ID}, runIDs(anthropic.BetaDeploymentRunListParams{CreatedAtGt: param.NewOpt(ok.CreatedAt)}))
	assert.Equal(t, []string{ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{CreatedAtLt: param.NewOpt(failed.CreatedAt)}))
	assert.Equal(t, []string{failed.ID, ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{CreatedAtGte: param.NewOpt(ok.CreatedAt), CreatedAtLte: param.NewOpt(failed.CreatedAt)}))
	assert.Equal(t, []string{failed.ID, ok.ID}, runIDs(anthropic.BetaDeploymentRunListParams{CreatedAtLt: param.NewOpt(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))}))
}

func TestConcurrentManualRunsEachRecordOneRun(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d, err := e.client.Beta.Deployments.New(ctx, newParams("par"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	ids := make(chan string, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.client.Beta.Deployments.Run(context.Background(), d.ID, anthropic.BetaDeploymentRunParams{})
			if assert.NoError(t, err) {
				ids <- r.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		assert.False(t, seen[id])
		seen[id] = true
	}
	assert.Len(t, seen, 40)
	assert.Equal(t, int64(40), e.backend.Created())
	_ = time.Second
}
