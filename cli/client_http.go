package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Headers every /v1 request carries (api-contract.md, "Requests").
const (
	managedAgentsBeta = "managed-agents-2026-04-01"
	anthropicVersion  = "2023-06-01"
)

// socketBaseURL is the URL used over the Unix socket; the host is ignored by
// the dialer but must be a valid one for net/http.
const socketBaseURL = "http://sandbox0d"

// maxResponseBytes bounds a JSON response held in memory. The largest the
// contract allows (100 deployments of up to 1 MiB each) fits well inside.
const maxResponseBytes = 512 << 20

// apiClient is a plain net/http client for the daemon's API, over the Unix
// socket or TCP.
type apiClient struct {
	http *http.Client
	ep   endpoint
	base string
}

func newAPIClient(ep endpoint) *apiClient {
	transport := &http.Transport{
		MaxIdleConns:        4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	base := ep.baseURL
	if ep.viaSocket() {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", ep.socket)
		}
		base = socketBaseURL
	} else {
		transport.Proxy = http.ProxyFromEnvironment
		transport.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	// No overall timeout: a manual run may legitimately take minutes and a
	// backup streams a whole database. The command's context (Ctrl-C) bounds
	// every request instead.
	client := &http.Client{
		Transport: transport,
		// Never follow redirects: net/http would resend x-api-key to
		// wherever a redirect points. A 3xx is reported as an error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &apiClient{http: client, ep: ep, base: base}
}

// where names the daemon's address for error messages.
func (c *apiClient) where() string {
	where := c.ep.baseURL
	if c.ep.viaSocket() {
		where = "socket " + c.ep.socket
	}
	if c.ep.how != "" {
		where += " (" + c.ep.how + ")"
	}
	return where
}

// send performs one request. A non-2xx answer is returned as an *APIError
// (the response body is consumed and closed); on success the caller owns the
// response body.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	return c.sendAccepting(ctx, method, path, query, body, "application/json")
}

// stream opens a server-sent events stream; the caller reads and closes it.
func (c *apiClient) stream(ctx context.Context, path string) (*http.Response, error) {
	return c.sendAccepting(ctx, http.MethodGet, path, nil, nil, "text/event-stream")
}

func (c *apiClient) sendAccepting(ctx context.Context, method, path string, query url.Values, body []byte, accept string) (*http.Response, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-beta", managedAgentsBeta)
	req.Header.Set("anthropic-version", anthropicVersion)
	if c.ep.apiKey != "" {
		req.Header.Set("x-api-key", c.ep.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		// url.Error repeats the method and URL; the cause is what helps.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("cannot reach sandbox0d at %s: %w (is the daemon running? see --config, --socket and --addr)", c.where(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		apiErr := decodeAPIError(resp)
		if resp.StatusCode == http.StatusUnauthorized && c.ep.baseURL != "" {
			apiErr.Hint = authHint(c.ep.apiKey != "")
		}
		return nil, apiErr
	}
	return resp, nil
}

// doJSON performs a request and returns the whole JSON body.
func (c *apiClient) doJSON(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response to %s %s: %w", method, path, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("response to %s %s exceeds %d bytes", method, path, maxResponseBytes)
	}
	return data, nil
}

// get is doJSON for GET requests.
func (c *apiClient) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	return c.doJSON(ctx, http.MethodGet, path, query, nil)
}

// post is doJSON for POST requests; a nil body sends none.
func (c *apiClient) post(ctx context.Context, path string, body []byte) ([]byte, error) {
	return c.doJSON(ctx, http.MethodPost, path, nil, body)
}
