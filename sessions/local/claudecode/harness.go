package claudecode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// Harness runs the turns of claude-code sessions. The backend builds one
// for each turn (the budget figures change between turns).
type Harness struct {
	Config Config
	// Binary is the resolved claude binary (ResolveBinary); the backend
	// shows Binary.ReadOnly to the sandbox.
	Binary Binary
	// Confined is whether the turn's sandbox isolates the process; it picks
	// the default permission mode and IS_SANDBOX.
	Confined bool
	// Home is Claude Code's HOME (its settings, login state and session
	// transcripts), the same for every turn of the session: the sandbox's
	// HOME when it sets one. Empty means <workspace>/.claude-home.
	Home string
	// SpentMicros is the session's list cost so far and LimitMicros its
	// budget cap, in millionths of USD; LimitMicros 0 means no budget.
	SpentMicros, LimitMicros int64
}

var _ harness.Harness = Harness{}

// maxUnknownLogBytes bounds the unmapped stream-json lines kept with the
// turn's log, and maxUnknownLineBytes each of them.
const (
	maxUnknownLogBytes  = harness.StderrTailBytes / 2
	maxUnknownLineBytes = 4 << 10
)

// noConversation is how Claude Code reports a --resume of a session it has
// no transcript of (turn 1 failed before the conversation was saved).
const noConversation = "No conversation found with session ID"

// RunTurn implements harness.Harness.
func (h Harness) RunTurn(ctx context.Context, turn harness.Turn, sink harness.Sink) (harness.Result, error) {
	home := h.Home
	if home == "" {
		home = filepath.Join(turn.Workspace, HomeDirName)
	}
	env := h.Config.TurnEnv(turn.Env, home, h.Confined)
	if err := CheckCredentials(env); err != nil {
		return harness.Result{}, err
	}
	if h.LimitMicros > 0 && h.SpentMicros >= h.LimitMicros {
		return harness.Result{StopReason: StopBudgetReached}, nil
	}
	prompt, system := turnText(turn)
	if prompt == "" {
		return harness.Result{}, errors.New("the turn has no user.message text to send to Claude Code")
	}
	args := TurnArgs{ClaudeSessionID: ClaudeSessionID(turn.SessionID), Resume: turn.Number > 1, Confined: h.Confined}
	if h.LimitMicros > 0 {
		args.BudgetMicros = h.LimitMicros - h.SpentMicros
	}
	if system != "" {
		// A system.message among the turn's events adds to the agent's
		// appended system prompt for this turn.
		h.Config.AppendSystem = strings.TrimSpace(h.Config.AppendSystem + "\n\n" + system)
	}
	log := &turnLog{}
	res, m, exit, err := h.run(ctx, turn, sink, env, args, prompt, log)
	if err == nil && args.Resume && !exit.Canceled && m.result != nil && m.ModelCalls() == 0 &&
		strings.Contains(strings.Join(m.result.Errors, " "), noConversation) {
		// Nothing to resume: start the conversation now.
		args.Resume = false
		res, m, exit, err = h.run(ctx, turn, sink, env, args, prompt, log)
	}
	res.Stderr = log.with(exit.Stderr)
	switch {
	case exit.Canceled:
		return res, context.Cause(ctx)
	case err != nil:
		return res, err
	}
	out := m.Outcome(h.SpentMicros)
	if out.CostMicros > 0 {
		sink.Usage(harness.Usage{ListCostMicros: out.CostMicros, ListCostCurrency: "USD"})
	}
	if !out.HasResult && exit.Failed() {
		return res, errors.New(exit.Describe("Claude Code"))
	}
	res.StopReason = out.StopReason
	if out.Failure != nil {
		if err := sink.Emit(errorEvent(out.Failure)); err != nil {
			return res, err
		}
	}
	if res.StopReason == StopEndTurn && h.LimitMicros > 0 && h.SpentMicros+out.CostMicros >= h.LimitMicros {
		res.StopReason = StopBudgetReached
	}
	return res, nil
}

// run runs Claude Code once and maps its output.
func (h Harness) run(ctx context.Context, turn harness.Turn, sink harness.Sink, env []string, args TurnArgs,
	prompt string, log *turnLog) (harness.Result, *Mapper, harness.Exit, error) {
	m := &Mapper{
		Emit:    sink.Emit,
		Usage:   sink.Usage,
		Unknown: log.unknown,
	}
	exit, err := harness.RunProcess(ctx, turn, sink, harness.Process{
		Argv:   h.Config.Argv(h.Binary.Path, args),
		Env:    env,
		Stdin:  []byte(prompt),
		OnLine: m.Line,
	})
	if err != nil {
		return harness.Result{}, m, exit, fmt.Errorf("running Claude Code (%s): %w", h.Binary.Path, err)
	}
	if ferr := m.Finish(); ferr != nil && !exit.Canceled {
		return harness.Result{}, m, exit, ferr
	}
	return harness.Result{}, m, exit, nil
}

// turnText is what Claude Code gets from the turn's events: the text of
// its user.messages (the prompt) and of its system.messages.
func turnText(turn harness.Turn) (prompt, system string) {
	var user, sys []string
	for _, raw := range turn.Events {
		var ev struct {
			Type    string `json:"type"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		for _, b := range ev.Content {
			if b.Type != "text" || b.Text == "" {
				continue
			}
			switch ev.Type {
			case "user.message":
				user = append(user, b.Text)
			case "system.message":
				sys = append(sys, b.Text)
			}
		}
	}
	prompt = strings.Join(user, "\n\n")
	if prompt == "" {
		prompt = turn.Prompt
	}
	return prompt, strings.Join(sys, "\n\n")
}

func errorEvent(f *Failure) json.RawMessage {
	out, _ := json.Marshal(map[string]any{"type": "session.error", "error": map[string]any{
		"type": f.Type, "message": f.Message, "retry_status": map[string]string{"type": "exhausted"},
	}})
	return out
}

// turnLog keeps the stream-json lines the mapper did not map, bounded,
// for the turn's log next to Claude Code's stderr.
type turnLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
}

func (l *turnLog) unknown(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(line) > maxUnknownLineBytes {
		line = append(line[:maxUnknownLineBytes:maxUnknownLineBytes], "…"...)
	}
	if l.buf.Len()+len(line) > maxUnknownLogBytes {
		l.dropped++
		return
	}
	l.buf.WriteString("claude-code: unmapped stream-json line: ")
	l.buf.Write(line)
	l.buf.WriteByte('\n')
}

// with appends the unmapped lines to the stderr tail.
func (l *turnLog) with(stderr []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append(bytes.Clone(stderr), l.buf.Bytes()...)
	if l.dropped > 0 {
		out = fmt.Appendf(out, "claude-code: %d more unmapped stream-json lines not kept\n", l.dropped)
	}
	return out
}
