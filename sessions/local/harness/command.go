package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Command is the "command" harness: each turn runs Argv in the workspace
// with the turn's events as JSON lines on stdin. Every stdout line becomes
// an event: a JSON object with a type is emitted as it is (the backend
// checks it against its type's official shape, see Sink.Emit), any other
// non-blank line becomes an agent.message with the line as its text. A
// span.model_request_end line also reports its usage and list cost
// (SpanUsage), even when the span itself is stored as text for its shape:
// what a model call cost was spent either way, and the budget must hold. Exit 0 ends the turn;
// any other exit is a harness failure.
type Command struct {
	// Argv is the program and its arguments. A bare name is looked up in
	// PATH; a relative path with a slash is relative to the workspace.
	Argv []string
}

var _ Harness = Command{}

// RunTurn implements Harness.
func (c Command) RunTurn(ctx context.Context, turn Turn, sink Sink) (Result, error) {
	var stdin bytes.Buffer
	for _, ev := range turn.Events {
		stdin.Write(ev)
		stdin.WriteByte('\n')
	}
	exit, err := RunProcess(ctx, turn, sink, Process{
		Argv:  c.Argv,
		Env:   turn.Env,
		Stdin: stdin.Bytes(),
		OnLine: func(line []byte) error {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			ev, eventType := jsonLineEvent(line)
			if ev == nil {
				return sink.EmitText(lineText(line))
			}
			if eventType == spanModelRequestEnd {
				if u, ok := SpanUsage(ev); ok {
					sink.Usage(u)
				}
			}
			return sink.Emit(ev)
		},
	})
	res := Result{Stderr: exit.Stderr}
	switch {
	case err != nil:
		return res, fmt.Errorf("the harness %q: %w", c.Argv[0], err)
	case exit.Canceled:
		return res, context.Cause(ctx)
	case exit.Failed():
		return res, errors.New(exit.Describe("the harness"))
	}
	return res, nil
}

// LineEvent turns one line of harness output into an event object: a JSON
// object with a string type is kept as it is; anything else becomes an
// agent.message whose text is the line.
func LineEvent(line []byte) json.RawMessage {
	if ev, _ := jsonLineEvent(line); ev != nil {
		return ev
	}
	return TextMessage(lineText(line))
}

// jsonLineEvent returns a copy of line and its type if line is a JSON
// object with a string type, and nil otherwise.
func jsonLineEvent(line []byte) (json.RawMessage, string) {
	if len(line) == 0 || line[0] != '{' {
		return nil, ""
	}
	var head struct {
		Type *string `json:"type"`
	}
	if json.Unmarshal(line, &head) != nil || head.Type == nil {
		return nil, ""
	}
	return bytes.Clone(line), *head.Type
}

// lineText is a line of output as agent.message text: valid UTF-8, no NUL.
func lineText(line []byte) string { return CleanText(string(line)) }

// TextMessage is an agent.message event with one text block.
func TextMessage(text string) json.RawMessage {
	out, _ := json.Marshal(textMessage{Content: [1]textBlock{{Text: text, Type: "text"}}, Type: "agent.message"})
	return out
}

// textMessage is what TextMessage encodes, its fields in the order
// encoding/json gives a map's keys.
type textMessage struct {
	Content [1]textBlock `json:"content"`
	Type    string       `json:"type"`
}

// textBlock is a text content block, its fields in the order encoding/json
// gives a map's keys (text, type).
type textBlock struct {
	Text string `json:"text"`
	Type string `json:"type"`
}
