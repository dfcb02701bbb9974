// Package fakemessages is a scripted Messages API on loopback for tests that
// run a real model client (the Claude Code CLI) offline.
//
// Each POST /v1/messages takes the next Reply of the script and streams it as
// server-sent events in the order and shapes the real API uses: message_start,
// then per content block content_block_start, its deltas (text_delta,
// thinking_delta + signature_delta, input_json_delta in several fragments)
// and content_block_stop, then message_delta with the stop reason and the
// final usage, then message_stop. The server is strict about what it is sent
// (method, path, auth, anthropic-version, model, max_tokens, alternating
// messages whose tool results answer the previous turn's tool uses, tool
// definitions): a request that breaks a rule gets the API's 400 error body
// and is recorded in Violations, so a test can fail on a client that the
// real API would have refused. Every request is recorded, and a Reply can
// inject faults (an HTTP error, a stream cut short, a stream that stalls
// until the test releases it or the client goes away).
package fakemessages

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Block is one content block of a scripted reply.
type Block struct {
	// Type is "text", "thinking" or "tool_use".
	Type string
	// Text is the text of a text block or the thinking of a thinking block.
	Text string
	// ID and Name are the tool_use block's; ID defaults to toolu_<n>.
	ID   string
	Name string
	// Input is the tool_use input, streamed as input_json_delta fragments.
	Input map[string]any
}

// Text is a text block.
func Text(s string) Block { return Block{Type: "text", Text: s} }

// Thinking is a thinking block.
func Thinking(s string) Block { return Block{Type: "thinking", Text: s} }

// ToolUse is a tool_use block.
func ToolUse(name string, input map[string]any) Block {
	return Block{Type: "tool_use", Name: name, Input: input}
}

// Usage is the token usage a reply reports: the input and cache figures in
// message_start, OutputTokens in message_delta.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
}

// Reply is what one model call answers.
type Reply struct {
	Blocks []Block
	// StopReason defaults to tool_use when a block is a tool_use, else
	// end_turn.
	StopReason string
	// Usage defaults to 10 input and 5 output tokens.
	Usage *Usage
	// Model in message_start defaults to the requested model.
	Model string

	// Faults.
	//
	// Status, when not 0, answers with that HTTP status and an API error
	// body of ErrorType (default api_error) and ErrorMessage.
	Status       int
	ErrorType    string
	ErrorMessage string
	// CutAfter, when > 0, ends the response after that many SSE events
	// without message_stop (a connection lost mid-stream).
	CutAfter int
	// Stall, when not nil, holds the stream after message_start and the
	// first block's start until it is closed or the client disconnects.
	Stall <-chan struct{}
	// Started, when not nil, is closed once the stream has begun (after
	// message_start is flushed): the client is mid-request.
	Started chan<- struct{}
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Messages is the decoded body of a POST /v1/messages (nil otherwise).
	Messages *MessagesRequest
}

// MessagesRequest is the part of a Messages API request body the server
// checks and tests look at.
type MessagesRequest struct {
	Model     string            `json:"model"`
	MaxTokens int64             `json:"max_tokens"`
	Stream    bool              `json:"stream"`
	System    json.RawMessage   `json:"system"`
	Messages  []Message         `json:"messages"`
	Tools     []json.RawMessage `json:"tools"`
}

// Message is one message of a request.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// ContentBlock is a request content block, loosely decoded.
type ContentBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// Blocks decodes the message's content: a string is one text block.
func (m Message) Blocks() ([]ContentBlock, error) {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []ContentBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []ContentBlock
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		return nil, fmt.Errorf("content is neither a string nor an array of blocks: %v", err)
	}
	return blocks, nil
}

// Text joins the text of the message's text blocks.
func (m Message) Text() string {
	blocks, _ := m.Blocks()
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Options configure a Server.
type Options struct {
	// APIKey, when set, must arrive as x-api-key or a Bearer token.
	APIKey string
	// Model, when set, is the only model a request may name.
	Model string
	// Script answers model calls in order; Next, when set, answers the calls
	// after the script is used up (n counts every model call from 0).
	Script []Reply
	Next   func(n int, req *MessagesRequest) Reply
	// TLS serves HTTPS (URL is https://…) with httptest's certificate for
	// 127.0.0.1; CertificatePEM is its root, for a client to trust.
	TLS bool
}

// Server is a running fake Messages API.
type Server struct {
	// URL is the base URL (ANTHROPIC_BASE_URL), http://127.0.0.1:port.
	URL string

	srv  *httptest.Server
	opts Options

	mu         sync.Mutex
	script     []Reply
	calls      int
	requests   []Request
	violations []string
}

// New starts a server on loopback, closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, script: append([]Reply(nil), opts.Script...)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakemessages: listening on loopback: %v", err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// CertificatePEM is the server's certificate (its own root) in PEM, for
// a TLS server (Options.TLS); nil otherwise.
func (s *Server) CertificatePEM() []byte {
	c := s.srv.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Close stops the server, ending any stalled stream.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Push appends replies to the script.
func (s *Server) Push(replies ...Reply) {
	s.mu.Lock()
	s.script = append(s.script, replies...)
	s.mu.Unlock()
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ModelCalls returns the decoded POST /v1/messages requests so far.
func (s *Server) ModelCalls() []*MessagesRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*MessagesRequest
	for _, r := range s.requests {
		if r.Messages != nil {
			out = append(out, r.Messages)
		}
	}
	return out
}

// Violations returns what requests broke the server's rules, one line each.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *Server) violate(w http.ResponseWriter, status int, errType, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	writeError(w, status, errType, msg)
}

func writeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_fake")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"type": "error",
		"error": map[string]string{"type": errType, "message": msg}})
	_, _ = w.Write(body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "reading the body: "+err.Error())
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	idx := s.record(rec)
	if !s.authorized(w, r) {
		return
	}
	switch {
	case r.URL.Path == "/v1/messages" && r.Method == http.MethodPost:
		s.messages(w, r, body, idx)
	case r.URL.Path == "/v1/messages/count_tokens" && r.Method == http.MethodPost:
		// A rough count is all a client uses this for.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, len(body)/4+1)
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		model := s.opts.Model
		if model == "" {
			model = "claude-sonnet-5-5"
		}
		fmt.Fprintf(w, `{"data":[{"type":"model","id":%q,"display_name":%q,"created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":%q,"last_id":%q}`,
			model, model, model, model)
	default:
		s.violate(w, http.StatusNotFound, "not_found_error", "unexpected request %s %s", r.Method, r.URL.Path)
	}
}

func (s *Server) record(rec Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
	return len(s.requests) - 1
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("anthropic-version") == "" {
		s.violate(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return false
	}
	if s.opts.APIKey == "" {
		return true
	}
	key := r.Header.Get("x-api-key")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && key == "" {
		key = bearer
	}
	if key != s.opts.APIKey {
		s.violate(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return false
	}
	return true
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request, body []byte, idx int) {
	var req MessagesRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		s.violate(w, http.StatusBadRequest, "invalid_request_error", "body: %v", err)
		return
	}
	s.mu.Lock()
	s.requests[idx].Messages = &req
	s.mu.Unlock()
	if err := s.check(&req); err != nil {
		s.violate(w, http.StatusBadRequest, "invalid_request_error", "%v", err)
		return
	}
	reply, ok := s.nextReply(&req)
	if !ok {
		s.violate(w, http.StatusInternalServerError, "api_error", "fakemessages: the script has no reply for model call %d", len(s.ModelCalls()))
		return
	}
	if reply.Status != 0 {
		errType := reply.ErrorType
		if errType == "" {
			errType = "api_error"
		}
		writeError(w, reply.Status, errType, reply.ErrorMessage)
		return
	}
	model := reply.Model
	if model == "" {
		model = req.Model
	}
	if req.Stream {
		streamReply(w, r, reply, model, idx)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	out, _ := json.Marshal(wholeMessage(reply, model, idx))
	_, _ = w.Write(out)
}

func (s *Server) nextReply(req *MessagesRequest) (Reply, bool) {
	s.mu.Lock()
	n := s.calls
	s.calls++
	if len(s.script) > 0 {
		reply := s.script[0]
		s.script = s.script[1:]
		s.mu.Unlock()
		return reply, true
	}
	next := s.opts.Next
	s.mu.Unlock()
	if next == nil {
		return Reply{}, false
	}
	return next(n, req), true
}

// check applies the rules of the real API that a client could plausibly
// break.
func (s *Server) check(req *MessagesRequest) error {
	if req.Model == "" {
		return fmt.Errorf("model: Field required")
	}
	if s.opts.Model != "" && req.Model != s.opts.Model {
		return fmt.Errorf("model: %q is not the model this test serves (%q)", req.Model, s.opts.Model)
	}
	if req.MaxTokens <= 0 {
		return fmt.Errorf("max_tokens: must be a positive integer")
	}
	if len(req.Messages) == 0 {
		return fmt.Errorf("messages: at least one message is required")
	}
	if req.Messages[0].Role != "user" {
		return fmt.Errorf("messages.0.role: the first message must use the user role")
	}
	var pendingToolUses map[string]bool
	prevRole := ""
	for i, m := range req.Messages {
		if m.Role == "system" {
			// System messages in the conversation (SystemMessageParam:
			// text only) sit between turns; they take no part in the
			// user/assistant alternation or tool_use pairing. Claude Code
			// sends them to current models.
			if err := systemMessage(m); err != nil {
				return fmt.Errorf("messages.%d.content: %v", i, err)
			}
			continue
		}
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("messages.%d.role: must be user, assistant or system, got %q", i, m.Role)
		}
		if prevRole == m.Role {
			return fmt.Errorf("messages.%d.role: roles must alternate between user and assistant", i)
		}
		prevRole = m.Role
		blocks, err := m.Blocks()
		if err != nil {
			return fmt.Errorf("messages.%d.content: %v", i, err)
		}
		if len(blocks) == 0 && i < len(req.Messages)-1 {
			return fmt.Errorf("messages.%d.content: must not be empty", i)
		}
		answered := map[string]bool{}
		uses := map[string]bool{}
		for j, b := range blocks {
			switch b.Type {
			case "text":
				if b.Text == "" {
					return fmt.Errorf("messages.%d.content.%d.text: text content blocks must be non-empty", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" {
					return fmt.Errorf("messages.%d.content.%d: tool_use blocks belong to assistant messages", i, j)
				}
				if b.ID == "" || b.Name == "" {
					return fmt.Errorf("messages.%d.content.%d: tool_use needs id and name", i, j)
				}
				uses[b.ID] = true
			case "tool_result":
				if m.Role != "user" {
					return fmt.Errorf("messages.%d.content.%d: tool_result blocks belong to user messages", i, j)
				}
				if !pendingToolUses[b.ToolUseID] {
					return fmt.Errorf("messages.%d.content.%d.tool_use_id: %q answers no tool_use of the previous message", i, j, b.ToolUseID)
				}
				answered[b.ToolUseID] = true
			case "thinking", "redacted_thinking", "image", "document", "search_result", "server_tool_use", "web_search_tool_result":
			default:
				return fmt.Errorf("messages.%d.content.%d.type: unknown block type %q", i, j, b.Type)
			}
		}
		if m.Role == "user" {
			for id := range pendingToolUses {
				if !answered[id] {
					return fmt.Errorf("messages.%d: tool_use ids were found without tool_result blocks immediately after: %s", i, id)
				}
			}
		}
		pendingToolUses = uses
	}
	for i, raw := range req.Tools {
		var tool struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		}
		if err := json.Unmarshal(raw, &tool); err != nil {
			return fmt.Errorf("tools.%d: %v", i, err)
		}
		if tool.Name == "" {
			return fmt.Errorf("tools.%d.name: Field required", i)
		}
		if (tool.Type == "" || tool.Type == "custom") && len(tool.InputSchema) == 0 {
			return fmt.Errorf("tools.%d.input_schema: Field required", i)
		}
	}
	return nil
}

func (r Reply) usage() Usage {
	if r.Usage != nil {
		return *r.Usage
	}
	return Usage{InputTokens: 10, OutputTokens: 5}
}

func (r Reply) stopReason() string {
	if r.StopReason != "" {
		return r.StopReason
	}
	for _, b := range r.Blocks {
		if b.Type == "tool_use" {
			return "tool_use"
		}
	}
	return "end_turn"
}

func (b Block) toolID(call, index int) string {
	if b.ID != "" {
		return b.ID
	}
	return fmt.Sprintf("toolu_fake%02d%02d", call, index)
}

func messageStart(reply Reply, model string, call int) map[string]any {
	u := reply.usage()
	return map[string]any{"type": "message_start", "message": map[string]any{
		"id": fmt.Sprintf("msg_fake%04d", call), "type": "message", "role": "assistant", "model": model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": u.InputTokens, "output_tokens": 1,
			"cache_creation_input_tokens": u.CacheCreationInputTokens,
			"cache_read_input_tokens":     u.CacheReadInputTokens},
	}}
}

// blockEvents are a block's content_block_start, deltas and stop.
func blockEvents(b Block, call, index int) []map[string]any {
	var start map[string]any
	var deltas []map[string]any
	switch b.Type {
	case "thinking":
		start = map[string]any{"type": "thinking", "thinking": "", "signature": ""}
		for _, piece := range split(b.Text, 2) {
			deltas = append(deltas, map[string]any{"type": "thinking_delta", "thinking": piece})
		}
		deltas = append(deltas, map[string]any{"type": "signature_delta", "signature": "ZmFrZS1zaWduYXR1cmU="})
	case "tool_use":
		start = map[string]any{"type": "tool_use", "id": b.toolID(call, index), "name": b.Name, "input": map[string]any{}}
		input := b.Input
		if input == nil {
			input = map[string]any{}
		}
		raw, _ := json.Marshal(input)
		for _, piece := range split(string(raw), 3) {
			deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": piece})
		}
	default:
		start = map[string]any{"type": "text", "text": ""}
		for _, piece := range split(b.Text, 2) {
			deltas = append(deltas, map[string]any{"type": "text_delta", "text": piece})
		}
	}
	events := []map[string]any{{"type": "content_block_start", "index": index, "content_block": start}}
	for _, d := range deltas {
		events = append(events, map[string]any{"type": "content_block_delta", "index": index, "delta": d})
	}
	return append(events, map[string]any{"type": "content_block_stop", "index": index})
}

// split cuts s into up to n non-empty pieces on rune boundaries, the way
// the API delivers a block in several deltas.
func split(s string, n int) []string {
	runes := []rune(s)
	if len(runes) == 0 {
		return []string{""}
	}
	size := (len(runes) + n - 1) / n
	var out []string
	for i := 0; i < len(runes); i += size {
		out = append(out, string(runes[i:min(i+size, len(runes))]))
	}
	return out
}

func streamReply(w http.ResponseWriter, r *http.Request, reply Reply, model string, call int) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", fmt.Sprintf("req_fake%04d", call))
	w.WriteHeader(http.StatusOK)
	sent := 0
	send := func(ev map[string]any) bool {
		if reply.CutAfter > 0 && sent >= reply.CutAfter {
			return false
		}
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev["type"], data)
		if flusher != nil {
			flusher.Flush()
		}
		sent++
		return true
	}
	if !send(messageStart(reply, model, call)) {
		return
	}
	send(map[string]any{"type": "ping"})
	if reply.Started != nil {
		close(reply.Started)
	}
	for i, b := range reply.Blocks {
		events := blockEvents(b, call, i)
		for k, ev := range events {
			if !send(ev) {
				return
			}
			if i == 0 && k == 0 && reply.Stall != nil {
				select {
				case <-reply.Stall:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Minute): // a forgotten stall must not hang a test run
					return
				}
			}
		}
	}
	u := reply.usage()
	if !send(map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": reply.stopReason(), "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.OutputTokens}}) {
		return
	}
	send(map[string]any{"type": "message_stop"})
}

// wholeMessage is the non-streaming answer.
func wholeMessage(reply Reply, model string, call int) map[string]any {
	u := reply.usage()
	var content []map[string]any
	for i, b := range reply.Blocks {
		switch b.Type {
		case "thinking":
			content = append(content, map[string]any{"type": "thinking", "thinking": b.Text, "signature": "ZmFrZS1zaWduYXR1cmU="})
		case "tool_use":
			input := b.Input
			if input == nil {
				input = map[string]any{}
			}
			content = append(content, map[string]any{"type": "tool_use", "id": b.toolID(call, i), "name": b.Name, "input": input})
		default:
			content = append(content, map[string]any{"type": "text", "text": b.Text})
		}
	}
	return map[string]any{"id": fmt.Sprintf("msg_fake%04d", call), "type": "message", "role": "assistant",
		"model": model, "content": content, "stop_reason": reply.stopReason(), "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens,
			"cache_creation_input_tokens": u.CacheCreationInputTokens, "cache_read_input_tokens": u.CacheReadInputTokens}}
}

// systemMessage checks a role "system" message: a string or text blocks,
// none empty.
func systemMessage(m Message) error {
	blocks, err := m.Blocks()
	if err != nil {
		return err
	}
	if len(blocks) == 0 {
		return fmt.Errorf("must not be empty")
	}
	for j, b := range blocks {
		if b.Type != "text" || b.Text == "" {
			return fmt.Errorf("%d: system messages hold non-empty text blocks only, got %q", j, b.Type)
		}
	}
	return nil
}
