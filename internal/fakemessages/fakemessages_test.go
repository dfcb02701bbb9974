package fakemessages

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

func client(s *Server, key string) anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL(s.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
}

var weatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
}}

// The official SDK's stream accumulator must rebuild exactly the scripted
// message from the server's events: that is what "streams like the real
// API" means for a client.
func TestStreamAccumulatesInOfficialSDK(t *testing.T) {
	s := New(t, Options{APIKey: "sk-fake", Model: "claude-sonnet-5-5", Script: []Reply{{
		Blocks: []Block{Thinking("Let me look."), Text("Checking the weather…"),
			ToolUse("get_weather", map[string]any{"city": "Paris", "days": []any{1.0, 2.0}})},
		Usage: &Usage{InputTokens: 120, OutputTokens: 42, CacheReadInputTokens: 7, CacheCreationInputTokens: 3},
	}}})
	c := client(s, "sk-fake")
	stream := c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-5-5", MaxTokens: 1024, Tools: []anthropic.ToolUnionParam{weatherTool},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))},
	})
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if types[0] != "message_start" || types[len(types)-1] != "message_stop" || types[len(types)-2] != "message_delta" {
		t.Errorf("event order %v", types)
	}
	if len(msg.Content) != 3 {
		t.Fatalf("content %+v", msg.Content)
	}
	if msg.Content[0].Type != "thinking" || msg.Content[0].Thinking != "Let me look." || msg.Content[0].Signature == "" {
		t.Errorf("thinking block %+v", msg.Content[0])
	}
	if msg.Content[1].Text != "Checking the weather…" {
		t.Errorf("text block %q", msg.Content[1].Text)
	}
	tu := msg.Content[2].AsToolUse()
	if tu.Name != "get_weather" || string(tu.Input) != `{"city":"Paris","days":[1,2]}` || tu.ID == "" {
		t.Errorf("tool_use block %+v input %s", tu, tu.Input)
	}
	if msg.StopReason != "tool_use" || msg.Usage.InputTokens != 120 || msg.Usage.OutputTokens != 42 ||
		msg.Usage.CacheReadInputTokens != 7 || msg.Usage.CacheCreationInputTokens != 3 {
		t.Errorf("stop %q usage %+v", msg.StopReason, msg.Usage)
	}
	calls := s.ModelCalls()
	if len(calls) != 1 || calls[0].Messages[0].Text() != "weather in Paris?" || !calls[0].Stream || len(calls[0].Tools) != 1 {
		t.Errorf("recorded %+v", calls)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations %v", v)
	}
}

func TestNonStreamingAndSecondCallSeesHistory(t *testing.T) {
	s := New(t, Options{Script: []Reply{{Blocks: []Block{ToolUse("get_weather", map[string]any{"city": "Oslo"})}}},
		Next: func(n int, req *MessagesRequest) Reply {
			return Reply{Blocks: []Block{Text("call " + string(rune('0'+n)))}}
		}})
	c := client(s, "any")
	ctx := context.Background()
	first, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "m", MaxTokens: 10, Tools: []anthropic.ToolUnionParam{weatherTool},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	if err != nil {
		t.Fatal(err)
	}
	tu := first.Content[0].AsToolUse()
	second, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "m", MaxTokens: 10, Tools: []anthropic.ToolUnionParam{weatherTool},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("hi")),
			first.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(tu.ID, "sunny", false)),
		}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Content[0].Text != "call 1" || second.StopReason != "end_turn" {
		t.Errorf("second %+v", second)
	}
	if got := len(s.ModelCalls()[1].Messages); got != 3 {
		t.Errorf("second call had %d messages", got)
	}
}

// Requests the real API would refuse get its 400 and are recorded.
func TestStrictAboutRequests(t *testing.T) {
	s := New(t, Options{APIKey: "sk-right", Model: "claude-sonnet-5-5", Next: func(int, *MessagesRequest) Reply {
		return Reply{Blocks: []Block{Text("ok")}}
	}})
	ctx := context.Background()
	user := anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))
	cases := []struct {
		name   string
		key    string
		params anthropic.MessageNewParams
		status int
		want   string
	}{
		{"wrong key", "sk-wrong", anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5, Messages: []anthropic.MessageParam{user}}, 401, "x-api-key"},
		{"other model", "sk-right", anthropic.MessageNewParams{Model: "claude-opus-4-1", MaxTokens: 5, Messages: []anthropic.MessageParam{user}}, 400, "model"},
		{"assistant first", "sk-right", anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
			Messages: []anthropic.MessageParam{anthropic.NewAssistantMessage(anthropic.NewTextBlock("x"))}}, 400, "messages.0.role"},
		{"not alternating", "sk-right", anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
			Messages: []anthropic.MessageParam{user, user}}, 400, "messages.1.role"},
		{"orphan tool_result", "sk-right", anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_x", "r", false))}}, 400, "tool_use_id"},
		{"unanswered tool_use", "sk-right", anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
			Messages: []anthropic.MessageParam{user, anthropic.NewAssistantMessage(anthropic.NewToolUseBlock("toolu_1", map[string]any{}, "get_weather")),
				anthropic.NewUserMessage(anthropic.NewTextBlock("and?"))}}, 400, "without tool_result"},
	}
	for _, tc := range cases {
		c := client(s, tc.key)
		_, err := c.Messages.New(ctx, tc.params)
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || !strings.Contains(apiErr.Error(), tc.want) {
			t.Errorf("%s: got %v, want HTTP %d mentioning %q", tc.name, err, tc.status, tc.want)
		}
	}
	if got := len(s.Violations()); got != len(cases) {
		t.Errorf("%d violations recorded, want %d: %v", got, len(cases), s.Violations())
	}
	if len(s.ModelCalls()) != len(cases)-1 { // the unauthorized one is not decoded
		t.Errorf("%d model calls recorded", len(s.ModelCalls()))
	}
	resp, err := http.Get(s.URL + "/v1/somewhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 { // no anthropic-version header
		t.Errorf("bare GET: %d", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	stall, started := make(chan struct{}), make(chan struct{})
	s := New(t, Options{Script: []Reply{
		{Status: 529, ErrorType: "overloaded_error", ErrorMessage: "Overloaded"},
		{Blocks: []Block{Text("never finished")}, CutAfter: 3},
		{Blocks: []Block{Text("held")}, Stall: stall, Started: started},
	}})
	c := client(s, "k")
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "m", MaxTokens: 5,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	_, err := c.Messages.New(ctx, params)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.Error(), "overloaded_error") {
		t.Errorf("529 fault: %v", err)
	}

	stream := c.Messages.NewStreaming(ctx, params)
	var types []string
	for stream.Next() {
		types = append(types, stream.Current().Type)
	}
	// message_start, ping (which the SDK does not surface), content_block_start.
	if strings.Join(types, ",") != "message_start,content_block_start" {
		t.Errorf("cut stream delivered %v", types)
	}

	cctx, cancel := context.WithCancel(ctx)
	stream = c.Messages.NewStreaming(cctx, params)
	done := make(chan []string)
	go func() {
		var got []string
		for stream.Next() {
			got = append(got, stream.Current().Type)
		}
		done <- got
	}()
	<-started
	cancel() // a client giving up ends the stalled stream
	if got := <-done; len(got) > 3 || (len(got) > 0 && got[len(got)-1] == "message_stop") {
		t.Errorf("stalled stream delivered %v", got)
	}
	if _, err := c.Messages.New(ctx, params); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Errorf("exhausted script: %v", err)
	}
}

// Role "system" messages (SystemMessageParam, which Claude Code sends current
// models) are accepted between turns and take no part in the alternation;
// one without text is refused.
func TestSystemMessages(t *testing.T) {
	s := New(t, Options{APIKey: "sk-right", Model: "claude-sonnet-5-5", Next: func(int, *MessagesRequest) Reply {
		return Reply{Blocks: []Block{Text("ok")}}
	}})
	c := client(s, "sk-right")
	system := func(text string) anthropic.MessageParam {
		return anthropic.MessageParam{OfSystem: &anthropic.SystemMessageParam{Content: []anthropic.TextBlockParam{{Text: text}}}}
	}
	user := anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))
	_, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
		Messages: []anthropic.MessageParam{user, system("be brief"), anthropic.NewAssistantMessage(anthropic.NewTextBlock("ok")),
			system("again"), anthropic.NewUserMessage(anthropic.NewTextBlock("more"))}})
	if err != nil {
		t.Fatalf("system messages between turns: %v (violations %v)", err, s.Violations())
	}
	_, err = c.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 5,
		Messages: []anthropic.MessageParam{user, system(""), anthropic.NewAssistantMessage(anthropic.NewTextBlock("ok"))}})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Error(), "messages.1.content") {
		t.Errorf("empty system message: got %v, want a 400 naming messages.1.content", err)
	}
}
