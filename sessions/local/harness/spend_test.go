package harness

import (
	"context"
	"encoding/json"
	"testing"
)

func TestSpanUsage(t *testing.T) {
	cases := []struct {
		ev   string
		want Usage
		ok   bool
	}{
		{`{"type":"span.model_request_end","model_usage":{"input_tokens":1200,"output_tokens":300,"cache_read_input_tokens":5,"cache_creation_input_tokens":7},"list_cost":{"amount":"0.81","currency":"USD"}}`,
			Usage{InputTokens: 1200, OutputTokens: 300, CacheReadInputTokens: 5, CacheCreation5mTokens: 7, ListCostMicros: 8100, ListCostCurrency: "USD"}, true},
		{`{"type":"span.model_request_end","list_cost":{"amount":"15","currency":"USD"}}`, Usage{ListCostMicros: 150_000, ListCostCurrency: "USD"}, true},
		{`{"type":"span.model_request_end","list_cost":{"amount":"0.0001","currency":"USD"}}`, Usage{ListCostMicros: 1, ListCostCurrency: "USD"}, true},
		{`{"type":"span.model_request_end","model_usage":{"input_tokens":3,"output_tokens":4}}`, Usage{InputTokens: 3, OutputTokens: 4}, true},
		{`{"type":"span.model_request_end","list_cost":{"amount":"-1","currency":"USD"}}`, Usage{}, false},
		{`{"type":"span.model_request_end","list_cost":{"amount":"0.00001","currency":"USD"}}`, Usage{}, false},
		{`{"type":"span.model_request_end","list_cost":{"amount":"1e3","currency":"USD"}}`, Usage{}, false},
		{`{"type":"span.model_request_end","list_cost":{"amount":"5","currency":"EUR"}}`, Usage{}, false},
		{`{"type":"span.model_request_end","model_usage":{"input_tokens":-3}}`, Usage{}, false},
		{`{"type":"span.model_request_start"}`, Usage{}, false},
		{`{"type":"agent.message","model_usage":{"input_tokens":3}}`, Usage{}, false},
	}
	for _, tc := range cases {
		got, ok := SpanUsage(json.RawMessage(tc.ev))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v %v, want %+v %v", tc.ev, got, ok, tc.want, tc.ok)
		}
	}
}

type usageSink struct {
	recordingSink
	usage []Usage
}

func (s *usageSink) Usage(u Usage) { s.usage = append(s.usage, u) }

// A command harness reports spend by printing span.model_request_end.
func TestCommandReportsSpanUsage(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	sink := &usageSink{}
	script := `echo '{"type":"span.model_request_start","id":"x"}'; ` +
		`echo '{"type":"span.model_request_end","model_request_start_id":"x","is_error":false,"model_usage":{"input_tokens":10,"output_tokens":2,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},"list_cost":{"amount":"0.5","currency":"USD"}}'`
	if _, err := (Command{Argv: []string{"/bin/sh", "-c", script}}).RunTurn(context.Background(), turn, sink); err != nil {
		t.Fatal(err)
	}
	if len(sink.usage) != 1 || sink.usage[0] != (Usage{InputTokens: 10, OutputTokens: 2, ListCostMicros: 5000, ListCostCurrency: "USD"}) {
		t.Errorf("usage %+v", sink.usage)
	}
	if len(sink.events) != 2 {
		t.Errorf("events %q", sink.events)
	}
}
