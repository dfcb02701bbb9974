package local

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

func TestBudgetLimitAndCents(t *testing.T) {
	for raw, want := range map[string]int64{
		`{"type":"limit","max_list_cost":{"amount":"2500","currency":"USD"}}`: 25_000_000,
		`{"type":"limit","max_list_cost":{"amount":"1","currency":"USD"}}`:    10_000,
		`{"type":"limit","max_list_cost":{"amount":"1","currency":"EUR"}}`:    0,
		`{"type":"limit","max_list_cost":{"amount":"-5","currency":"USD"}}`:   0,
		`{"type":"other"}`: 0, `null`: 0, ``: 0,
	} {
		assert.Equal(t, want, budgetLimitMicros(json.RawMessage(raw)), raw)
	}
	for micros, want := range map[int64]string{0: "0", 4_999: "0", 5_000: "1", 150_300: "15", 25_000_000: "2500"} {
		assert.Equal(t, want, centsString(micros), "%d micros", micros)
	}
}

// The budget caps a session whatever its harness: a command harness that
// reports a model call costing more than the cap (span.model_request_end
// with list_cost) ends its turn budget_reached, the session shows the list
// cost in cents, and a further message is a 400 while an interrupt is not.
func TestCommandHarnessSpendReachesBudget(t *testing.T) {
	span := `{"type":"span.model_request_end","model_request_start_id":"sevt_x","is_error":false,` +
		`"model_usage":{"input_tokens":40,"output_tokens":9,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},` +
		`"list_cost":{"amount":"2.5","currency":"USD"}}`
	sink := &testSink{}
	rig := newRig(t, []Agent{shAgent("agent_spender", "echo '"+span+"'")}, func(c *Config) { c.Events = sink })
	id := rig.create("agent_spender", func(req *sessions.CreateRequest) {
		req.Budget = json.RawMessage(`{"type":"limit","max_list_cost":{"amount":"1","currency":"USD"}}`)
	})
	rig.waitForEvent(id, func(ev storedEvent) bool { return ev.Type == eventStatusIdle })
	rec := rig.waitDone(id)
	assert.Equal(t, int64(25_000), rec.Usage.ListCostMicros)
	assert.Equal(t, int64(40), rec.Usage.InputTokens)
	var idle struct {
		StopReason struct{ Type string } `json:"stop_reason"`
	}
	evs := rig.events(id)
	require.NoError(t, json.Unmarshal(evs[len(evs)-1].JSON, &idle))
	assert.Equal(t, "budget_reached", idle.StopReason.Type)
	seen := 0
	assert.Equal(t, []string{event.SessionCreated + " " + id, event.SessionStatusRunStarted + " " + id,
		event.SessionStatusIdled + " " + id, event.SessionBudgetReached + " " + id}, outboxSince(t, rig.st, &seen),
		"the idle at the cap is reported as session.budget_reached too")

	var view struct {
		Usage struct {
			ListCost struct{ Amount, Currency string } `json:"list_cost"`
		} `json:"usage"`
	}
	rig.call("GET", "/v1/sessions/"+id, "", &view)
	assert.Equal(t, "3", view.Usage.ListCost.Amount, "2.5 cents, in whole cents")

	var errBody struct {
		Error struct{ Message string } `json:"error"`
	}
	resp := rig.call("POST", "/v1/sessions/"+id+"/events",
		`{"events":[{"type":"user.message","content":[{"type":"text","text":"more"}]}]}`, &errBody)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.True(t, strings.Contains(errBody.Error.Message, "budget"), errBody.Error.Message)
	resp = rig.call("POST", "/v1/sessions/"+id+"/events", `{"events":[{"type":"user.interrupt"}]}`, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestClaudeCodeAgentConfig(t *testing.T) {
	base := Config{Environments: []Environment{{ID: "env"}}, WorkspaceDir: t.TempDir()}
	for _, tc := range []struct {
		agent Agent
		want  string
	}{
		{Agent{ID: "a", ClaudeCode: &claudecode.Config{PermissionMode: "yolo"}}, "local.agents[0].permission_mode"},
		{Agent{ID: "a", ClaudeCode: &claudecode.Config{}, Command: []string{"x"}}, "local.agents[0].command"},
		{Agent{ID: "a"}, "local.agents[0].command"},
	} {
		cfg := base
		cfg.Agents = []Agent{tc.agent}
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	cfg := base
	cfg.Agents = []Agent{{ID: "a", ClaudeCode: &claudecode.Config{Model: "claude-sonnet-5-5"}}}
	assert.NoError(t, cfg.Validate())
}
