// Package harness is the seam between a local session and the program that
// does an agent's work: a Harness runs one turn of a conversation and
// reports what happened as official session events.
//
// The local backend owns everything around a turn: the session record, the
// queue of messages, statuses (running, idle, terminated), the workspace,
// limits and persistence. A Harness only turns a Turn's input events into
// output events through a Sink. It must not import sessions/local (the
// backend imports the harnesses, so dependencies point one way).
//
// Cancellation: the turn's ctx is canceled when the user interrupts the
// turn, the turn times out, its output exceeds the session's limits, the
// session is deleted or the daemon stops. RunTurn must then stop its work
// (RunProcess does this for a process group) and return; the backend, not
// the harness, decides from the cancel cause how the turn ended, so the
// error returned after a cancellation is ignored.
package harness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/internal/ids"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Harness runs turns. Implementations must be safe for concurrent use by
// several sessions; one session never runs two turns at once.
type Harness interface {
	// RunTurn runs one turn and returns when it is over. A nil error ends
	// the turn normally (the session goes idle with res.StopReason, or
	// end_turn when empty). A non-nil error is a harness failure: the backend
	// records err.Error() in a session.error and terminates the session.
	RunTurn(ctx context.Context, turn Turn, sink Sink) (res Result, err error)
}

// Turn is one turn of a session.
type Turn struct {
	SessionID string
	// Number is 1 for the turn that starts a session, then 2, 3, …
	Number int
	// Events are the turn's input events (user.message, system.message) as
	// recorded, with id and processed_at, one JSON object each, in order.
	Events []json.RawMessage
	// Prompt is the text of the first user.message among Events ("" when
	// there is none).
	Prompt string
	// Workspace is the session's directory, the same for every turn; a
	// harness keeps its own state there between turns.
	Workspace string
	// Env is the environment every process of the turn gets: a few daemon
	// variables, the agent's, environment's and vaults' variables and the
	// SANDBOX0D_* variables. Harnesses may add to it, not remove from it.
	Env []string
	// Sandbox starts every process of the turn; nothing else may.
	Sandbox Sandbox
	// KillGracePeriod is how long a process gets between SIGTERM and
	// SIGKILL once the turn is canceled, how long a pipe may stay open with
	// nothing written once the process has exited, and, once the turn is
	// canceled, how long its output may still drain.
	KillGracePeriod time.Duration
	// GraceBound, when set, may shorten a grace period at the moment it
	// starts (the daemon's shutdown budget); drain tells the output drain
	// from the SIGTERM-to-SIGKILL grace.
	GraceBound func(grace time.Duration, drain bool) time.Duration
}

// grace is the grace period of a stage, bounded by GraceBound.
func (t Turn) grace(drain bool) time.Duration {
	if t.GraceBound == nil {
		return t.KillGracePeriod
	}
	return t.GraceBound(t.KillGracePeriod, drain)
}

// Result is how a turn that did not fail ended.
type Result struct {
	// StopReason is the session.status_idle stop_reason type; "" means
	// end_turn.
	StopReason string
	// Stderr is the tail of the harness's diagnostic output, kept with the
	// session for operators (never sent to clients as events).
	Stderr []byte
}

// Sink receives a turn's output. Its methods may be called from one
// goroutine at a time.
type Sink interface {
	// Emit records one event: a JSON object with a "type" naming a session
	// event type a harness may emit (MayEmit: agent.*, span.model_request_*,
	// session.error) in that type's official shape (CheckEvent: required
	// members, JSON types, enums). The backend gives it processed_at and a
	// fresh id, except that an "id" minted by NewEventID is kept. Events
	// refer to earlier ones by id (agent.tool_result's tool_use_id,
	// agent.mcp_tool_result's mcp_tool_use_id, span.model_request_end's
	// model_request_start_id): a harness's own id on a tool use or model
	// request start that the backend replaces is mapped in the later
	// events of the turn that name it. Anything else (another type, a
	// missing or mistyped member, a reference to no event of the turn) is
	// recorded as agent.message text holding the JSON as emitted. Emit
	// blocks while the backend catches up, and returns an error once the
	// turn must stop (its limits are reached or it was canceled); the
	// harness should stop then.
	Emit(event json.RawMessage) error
	// EmitText records an agent.message with one text block (valid UTF-8),
	// as Emit(TextMessage(text)) does, without the JSON round trip: a
	// harness printing plain text lines does this for every line.
	EmitText(text string) error
	// Usage adds token counts the harness observed to the session's usage.
	Usage(u Usage)
	// ProcessStarted tells the backend a process group the turn started, so
	// that a daemon restarted under it can find and stop it.
	ProcessStarted(pid int)
}

// Usage is what one model call (or several) cost, in the fields of the
// official session usage object.
type Usage struct {
	InputTokens           int64
	OutputTokens          int64
	CacheReadInputTokens  int64
	CacheCreation5mTokens int64 // cache_creation.ephemeral_5m_input_tokens
	CacheCreation1hTokens int64 // cache_creation.ephemeral_1h_input_tokens
	ListCostMicros        int64 // list_cost in millionths of ListCostCurrency
	ListCostCurrency      string
}

// Sandbox makes processes ready to start inside the session's sandbox: the
// workspace as working directory and the only writable place the policy
// allows, the network policy of the environment. The backend adapts its
// sandbox.Sandbox to this (filling in the rest of the sandbox.Spec);
// harnesses never build an *exec.Cmd themselves. RunProcess drives the
// returned Process (Start, Signal, Wait) as the sandbox package requires.
type Sandbox interface {
	Command(argv []string, env []string) (*sandbox.Process, error)
}

// ErrStop is what a Sink returns once the turn must end.
var ErrStop = errors.New("the turn was stopped")

// EventIDPrefix starts every session event id.
const EventIDPrefix = "sevt_"

// NewEventID returns a fresh session event id (EventIDPrefix and 24
// characters of [0-9A-Za-z], the official alphabet the backend mints), for a
// harness that must refer to an event it emits.
func NewEventID() string { return ids.New(strings.TrimSuffix(EventIDPrefix, "_")) }

// IsEventID reports whether id has the shape NewEventID mints, or the one
// earlier versions minted (22 characters of base64url), so a backend keeps
// only ids that cannot collide with its own or name anything else, and a
// harness written against the old shape keeps working.
func IsEventID(id string) bool {
	if ids.IsNew(strings.TrimSuffix(EventIDPrefix, "_"), id) {
		return true
	}
	rest, ok := strings.CutPrefix(id, EventIDPrefix)
	if !ok || len(rest) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
