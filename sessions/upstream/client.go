package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Headers every upstream call carries. Each API demands its own beta: the
// Files API answers 400 without files-api-2025-04-14, memory stores expect
// the agent-memory beta the official SDKs send.
const (
	managedAgentsBeta    = "managed-agents-2026-04-01"
	filesBeta            = "files-api-2025-04-14"
	memoryStoresBeta     = "agent-memory-2026-07-22"
	defaultAPIVersion    = "2023-06-01"
	idempotencyKeyHeader = "Idempotency-Key"
	userAgent            = "sandbox0d-upstream"
)

// maxAnswerBytes bounds how much of an upstream answer is read.
const maxAnswerBytes = 4 << 20

// call is one upstream request. path is already escaped.
type call struct {
	method         string
	path           string
	query          url.Values
	body           []byte
	idempotencyKey string
	// beta is the anthropic-beta value; empty means the managed-agents beta.
	beta string
}

// String names the call in messages: method and path, without the query.
func (c call) String() string { return c.method + " " + c.path }

// answer is one upstream HTTP response, read in full.
type answer struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
	// envelope is the upstream error envelope, when the body is one.
	envelope *errorEnvelope
}

type errorEnvelope struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func (a *answer) ok() bool { return a.status >= 200 && a.status < 300 }

// transportError is a call that got no HTTP answer.
type transportError struct {
	call    string
	cause   error
	timeout time.Duration // > 0 when the per-call timeout expired
	// unsent is true when no connection was ever made, so the upstream
	// cannot have seen the request.
	unsent bool
}

func (e *transportError) Error() string {
	if e.timeout > 0 {
		return fmt.Sprintf("%s: no answer within %s (upstream.request_timeout)", e.call, e.timeout)
	}
	return fmt.Sprintf("%s: could not reach the upstream: %v", e.call, e.cause)
}

func (e *transportError) Unwrap() error { return e.cause }

// send makes one upstream call with the per-call timeout.
func (b *Backend) send(parent context.Context, c call) (*answer, error) {
	ctx, cancel := context.WithTimeout(parent, b.requestTimeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, b.endpoint(c.path, c.query), body)
	if err != nil {
		return nil, &transportError{call: c.String(), cause: err, unsent: true}
	}
	b.setHeaders(req.Header)
	if c.beta != "" {
		req.Header.Set("anthropic-beta", c.beta)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.idempotencyKey != "" {
		req.Header.Set(idempotencyKeyHeader, c.idempotencyKey)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, b.transportFailure(parent, ctx, c, err)
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp)
	if err != nil {
		return nil, b.transportFailure(parent, ctx, c, err)
	}
	a := &answer{status: resp.StatusCode, header: resp.Header, body: raw}
	if !a.ok() {
		var env errorEnvelope
		if json.Unmarshal(raw, &env) == nil && env.Type == "error" {
			a.envelope = &env
		}
	}
	a.requestID = requestIDOf(resp.Header, a.envelope)
	return a, nil
}

// readAnswer reads a response body of at most maxAnswerBytes, into one
// buffer of the announced length when there is one (io.ReadAll would grow
// its buffer from 512 bytes, copying a session object several times).
func readAnswer(resp *http.Response) ([]byte, error) {
	r := io.LimitReader(resp.Body, maxAnswerBytes)
	if resp.ContentLength <= 0 || resp.ContentLength > maxAnswerBytes {
		return io.ReadAll(r)
	}
	buf := make([]byte, 0, resp.ContentLength+1) // +1: room to see EOF without growing
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // longer than announced: grow as ReadAll would
		}
	}
}

func (b *Backend) transportFailure(parent, ctx context.Context, c call, err error) *transportError {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	te := &transportError{call: c.String(), cause: err, unsent: neverConnected(err)}
	if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		te.timeout = b.requestTimeout
	}
	return te
}

// neverConnected reports errors that happen before a connection exists
// (DNS, dial), after which a resend cannot apply a request twice.
func neverConnected(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// endpoint joins the base URL, an escaped path and the query, adding the
// beta=true qualifier the official clients send.
func (b *Backend) endpoint(path string, query url.Values) string {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("beta", "true")
	return b.base.String() + path + "?" + q.Encode()
}

func (b *Backend) setHeaders(h http.Header) {
	h.Set("X-Api-Key", b.apiKey)
	h.Set("anthropic-version", defaultAPIVersion)
	h.Set("anthropic-beta", managedAgentsBeta)
	h.Set("Accept", "application/json")
	h.Set("User-Agent", userAgent)
}

// requestIDOf finds the upstream's request id: the request-id header
// (Anthropic), x-request-id (common proxies), or the envelope's request_id.
func requestIDOf(h http.Header, env *errorEnvelope) string {
	for _, k := range []string{"request-id", "x-request-id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	if env != nil {
		return env.RequestID
	}
	return ""
}

// pathOf escapes each segment and joins them under /v1.
func pathOf(segments ...string) string {
	var sb strings.Builder
	sb.WriteString("/v1")
	for _, s := range segments {
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(s))
	}
	return sb.String()
}
