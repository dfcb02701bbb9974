package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// errBudgetReached refuses a message to a session at its budget cap.
var errBudgetReached = errors.New("the session has reached its budget")

// budgetReachedError is errBudgetReached with the figures for the client.
type budgetReachedError struct{ msg string }

func (e *budgetReachedError) Error() string { return e.msg }
func (e *budgetReachedError) Unwrap() error { return errBudgetReached }

const stopReasonBudgetReached = "budget_reached"

// budgetLimitMicros reads a session's budget ({"type":"limit",
// "max_list_cost":{"amount":"<minor units>","currency":"USD"}}, validated
// when it was set) as millionths of a dollar; 0 means no budget.
func budgetLimitMicros(raw json.RawMessage) int64 {
	if len(raw) == 0 {
		return 0
	}
	var b struct {
		Type        string `json:"type"`
		MaxListCost struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"max_list_cost"`
	}
	if json.Unmarshal(raw, &b) != nil || b.Type != "limit" || b.MaxListCost.Currency != "USD" {
		return 0
	}
	cents, err := strconv.ParseInt(b.MaxListCost.Amount, 10, 64)
	if err != nil || cents <= 0 || cents > 1<<40 {
		return 0
	}
	return cents * 10_000
}

// atBudget reports whether a session has spent its budget.
func atBudget(rec *sessionRecord) bool {
	limit := budgetLimitMicros(rec.Budget)
	return limit > 0 && rec.Usage.ListCostMicros >= limit
}

// budgetError is the 400 a message to a session at its cap gets.
func budgetError(rec *sessionRecord) string {
	return fmt.Sprintf("session %s has reached its budget (budget.max_list_cost %s USD cents; list cost so far %s): "+
		"it runs no more turns", rec.ID, centsString(budgetLimitMicros(rec.Budget)), centsString(rec.Usage.ListCostMicros))
}

// centsString renders millionths of a dollar as whole cents, the minor
// units of the API's money objects, rounding half up.
func centsString(micros int64) string {
	return strconv.FormatInt((micros+5_000)/10_000, 10)
}

// turnHarness picks the harness of a turn and the sandbox its processes
// start in. A claude-code agent gets the claude binary resolved now (an
// npm upgrade moves its target), the binary's directories shown read-only,
// and the session's spend and cap so the turn runs within what remains.
func (b *Backend) turnHarness(run *sessionRun, rec *sessionRecord) (harness.Harness, turnSandbox) {
	sb := b.sandboxFor(run)
	// What the agent's read_only names; the sandbox shows nothing else of
	// the host beyond its allow-list and the harness's program.
	sb.spec.ReadOnly = append(sb.spec.ReadOnly, run.agent.ReadOnly...)
	cc := run.agent.ClaudeCode
	if cc == nil {
		return harness.Command{Argv: run.agent.Command}, sb
	}
	bin, err := claudecode.ResolveBinary(cc.Binary)
	if err != nil {
		return failedHarness{fmt.Errorf("agent %s: %w", run.agent.ID, err)}, sb
	}
	sb.spec.ReadOnly = append(sb.spec.ReadOnly, bin.ReadOnly...)
	if cc.MCPServers != "" {
		// The CLI reads its --mcp-config file inside the sandbox.
		sb.spec.ReadOnly = append(sb.spec.ReadOnly, cc.MCPServers)
	}
	return claudecode.Harness{
		Config:      *cc,
		Binary:      bin,
		Confined:    b.sandbox.Confined(),
		Home:        sb.spec.Home,
		SpentMicros: rec.Usage.ListCostMicros,
		LimitMicros: budgetLimitMicros(rec.Budget),
	}, sb
}

// failedHarness fails every turn with err (a harness that cannot start).
type failedHarness struct{ err error }

func (f failedHarness) RunTurn(ctx context.Context, _ harness.Turn, _ harness.Sink) (harness.Result, error) {
	return harness.Result{}, f.err
}
