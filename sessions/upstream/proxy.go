package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// maxScrubbedBody bounds the error bodies the proxy reads to scrub the key.
const maxScrubbedBody = 1 << 20

// daemonRequestID carries the id the API layer gave the request, for
// answers that have none from the upstream.
type daemonRequestID struct{}

// newProxy builds the reverse proxy for every /v1/… route the daemon does
// not own. It streams (FlushInterval -1: every write reaches the client
// at once, so SSE is never buffered), swaps the client's credentials for
// the daemon's, and never lets the daemon's key reach the client.
func (b *Backend) newProxy(transport http.RoundTripper) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:        b.rewrite,
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: b.scrubResponse,
		ErrorHandler:   b.proxyError,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			wire.WriteError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
			return
		}
		if r.ContentLength > b.maxProxyBody {
			wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"request body is %d bytes, at most %d may be proxied (upstream.max_proxy_body)", r.ContentLength, b.maxProxyBody))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, b.maxProxyBody)
		}
		// The upstream's request-id names the call where it can be looked up;
		// the daemon's own id comes back only when the upstream sends none.
		id := w.Header().Get(wire.RequestIDHeader)
		w.Header().Del(wire.RequestIDHeader)
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), daemonRequestID{}, id)))
	})
}

func (b *Backend) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(b.base)
	q := pr.Out.URL.Query()
	if q.Get("beta") != "true" {
		q.Set("beta", "true")
		pr.Out.URL.RawQuery = q.Encode()
	}
	h := pr.Out.Header
	// The client authenticated to the daemon; the upstream sees only the
	// daemon's key.
	for _, k := range []string{"Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie"} {
		h.Del(k)
	}
	h.Set("X-Api-Key", b.apiKey)
	// Without the client's Accept-Encoding the transport negotiates gzip
	// itself and hands back plain bytes, so error bodies can be scrubbed.
	h.Del("Accept-Encoding")
	if h.Get("anthropic-version") == "" {
		h.Set("anthropic-version", defaultAPIVersion)
	}
	// anthropic-beta is the client's own: each API demands its own beta
	// (files, memory stores, none for models), and the SDK knows which.
}

// scrubResponse removes the daemon's key from anything the upstream echoes:
// headers always, and the body of error answers (which may quote the
// request), unless the body is compressed or too large to buffer.
func (b *Backend) scrubResponse(resp *http.Response) error {
	for _, k := range []string{"X-Api-Key", "Authorization", "Proxy-Authorization"} {
		resp.Header.Del(k)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			if strings.Contains(v, b.apiKey) {
				resp.Header.Del(k)
				b.log.Warn("upstream echoed the daemon's key in a response header; header dropped", "header", k)
				break
			}
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return b.refusedCredentials(resp)
	}
	if resp.Header.Get(wire.RequestIDHeader) == "" {
		if id, _ := resp.Request.Context().Value(daemonRequestID{}).(string); id != "" {
			resp.Header.Set(wire.RequestIDHeader, id)
		}
	}
	if resp.StatusCode < 400 || isEventStream(resp.Header) || resp.Header.Get("Content-Encoding") != "" ||
		resp.ContentLength > maxScrubbedBody {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrubbedBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if len(body) > maxScrubbedBody {
		return errors.New("upstream error body too large to check for secrets")
	}
	body = bytes.ReplaceAll(body, []byte(b.apiKey), []byte(redacted))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// credentialsRefused is an upstream 401. The client authenticated to the
// daemon, so passing the 401 on would tell it that its own key is wrong;
// it is answered as a 502 that names the daemon's credentials instead.
type credentialsRefused struct{ detail string }

func (e *credentialsRefused) Error() string {
	return "the upstream refused the daemon's credentials (check upstream.api_key): " + e.detail
}

func (b *Backend) refusedCredentials(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxScrubbedBody))
	a := &answer{status: resp.StatusCode, header: resp.Header, body: raw}
	var env errorEnvelope
	if json.Unmarshal(raw, &env) == nil && env.Type == "error" {
		a.envelope = &env
	}
	a.requestID = requestIDOf(resp.Header, a.envelope)
	c := call{method: resp.Request.Method, path: resp.Request.URL.Path}
	f := operation{redact: newRedactor(b.apiKey)}.failure(c, a, nil)
	return &credentialsRefused{detail: f.describe()}
}

func isEventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}

// proxyError answers failures of the proxy itself (no upstream answer) with
// the daemon's error envelope and a 502.
func (b *Backend) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client left; there is nobody to answer.
		return
	}
	if id, _ := r.Context().Value(daemonRequestID{}).(string); id != "" {
		w.Header().Set(wire.RequestIDHeader, id)
	}
	msg := newRedactor(b.apiKey).clean(err.Error())
	b.log.Warn("proxying to the upstream failed", "method", r.Method, "path", r.URL.Path, "error", msg)
	var refused *credentialsRefused
	if !errors.As(err, &refused) {
		msg = "the session backend could not be reached: " + msg
	}
	wire.WriteError(w, http.StatusBadGateway, msg)
}
