package harness

import (
	"encoding/json"
	"strconv"
	"strings"
)

const spanModelRequestEnd = "span.model_request_end"

// SpanUsage reads what a span.model_request_end event says a model call
// used, so a harness that prints such events reports its spend: the
// official model_usage token counts, and an optional list_cost member
// ({"amount":"0.81","currency":"USD"}: minor units of the currency, as in
// every money object of the API, with up to four decimals so a call costing
// less than a cent counts). ok is false for any other event, and for a
// span whose model_usage and list_cost are both missing or malformed.
func SpanUsage(event json.RawMessage) (u Usage, ok bool) {
	var ev struct {
		Type       string `json:"type"`
		ModelUsage *struct {
			InputTokens              int64 `json:"input_tokens"`
			OutputTokens             int64 `json:"output_tokens"`
			CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
			CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
		} `json:"model_usage"`
		ListCost *struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"list_cost"`
	}
	if json.Unmarshal(event, &ev) != nil || ev.Type != spanModelRequestEnd {
		return Usage{}, false
	}
	if m := ev.ModelUsage; m != nil && m.InputTokens >= 0 && m.OutputTokens >= 0 &&
		m.CacheReadInputTokens >= 0 && m.CacheCreationInputTokens >= 0 {
		u = Usage{InputTokens: m.InputTokens, OutputTokens: m.OutputTokens,
			CacheReadInputTokens: m.CacheReadInputTokens, CacheCreation5mTokens: m.CacheCreationInputTokens}
		ok = true
	}
	if c := ev.ListCost; c != nil && c.Currency == "USD" {
		if micros, valid := minorUnitsToMicros(c.Amount); valid {
			u.ListCostMicros, u.ListCostCurrency = micros, "USD"
			ok = true
		}
	}
	return u, ok
}

// minorUnitsToMicros parses a non-negative amount of cents with up to four
// decimals ("15", "0.81", "0.0001") into millionths of a dollar.
func minorUnitsToMicros(amount string) (int64, bool) {
	whole, frac, _ := strings.Cut(amount, ".")
	if whole == "" || len(frac) > 4 || len(whole) > 12 {
		return 0, false
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 4-len(frac)), 10, 64); err != nil {
			return 0, false
		}
	}
	return int64(w*10_000 + f), true
}
