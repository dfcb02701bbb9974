package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// managedAgentsBeta is the beta header every /v1 request carries.
const managedAgentsBeta = "managed-agents-2026-04-01"

// apiClient speaks the Deployments API over TCP keep-alive connections with
// the benchmark's API key.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string, conns int) *apiClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: base, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// apiStatusError is a non-2xx answer.
type apiStatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiStatusError) Error() string {
	body := e.Body
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, body)
}

// do sends one request and returns the status and body; a non-2xx status is
// an *apiStatusError.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("anthropic-beta", managedAgentsBeta)
	req.Header.Set("x-api-key", benchAPIKey)
	if body != nil {
		req.Header.Set("content-type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return data, &apiStatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	return data, nil
}

func (c *apiClient) doJSON(ctx context.Context, method, path string, body []byte, out any) error {
	data, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// Wire shapes the harness reads (a subset of the API's).
type wireDeployment struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Agent         wireAgent         `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	Metadata      map[string]string `json:"metadata"`
	Resources     []json.RawMessage `json:"resources"`
	Schedule      *struct {
		Expression string `json:"expression"`
		Timezone   string `json:"timezone"`
	} `json:"schedule"`
	Status       string `json:"status"`
	PausedReason *struct {
		Type  string `json:"type"`
		Error *struct {
			Type string `json:"type"`
		} `json:"error"`
	} `json:"paused_reason"`
	CreatedAt string `json:"created_at"`
}

type wireAgent struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type wireRun struct {
	ID             string `json:"id"`
	DeploymentID   string `json:"deployment_id"`
	TriggerContext struct {
		Type        string  `json:"type"`
		ScheduledAt *string `json:"scheduled_at"`
	} `json:"trigger_context"`
	SessionID *string `json:"session_id"`
	Error     *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	CreatedAt string `json:"created_at"`
}

func (r wireRun) errorType() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Type
}

func (r wireRun) scheduledAt() time.Time {
	if r.TriggerContext.ScheduledAt == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, *r.TriggerContext.ScheduledAt)
	return t
}

func (r wireRun) createdAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	return t
}

type wirePage[T any] struct {
	Data     []T     `json:"data"`
	NextPage *string `json:"next_page"`
}

func (c *apiClient) createDeployment(ctx context.Context, body []byte) (wireDeployment, error) {
	var d wireDeployment
	err := c.doJSON(ctx, http.MethodPost, "/v1/deployments", body, &d)
	return d, err
}

func (c *apiClient) getDeployment(ctx context.Context, id string) (wireDeployment, error) {
	var d wireDeployment
	err := c.doJSON(ctx, http.MethodGet, "/v1/deployments/"+id, nil, &d)
	return d, err
}

func (c *apiClient) runDeployment(ctx context.Context, id string) (wireRun, error) {
	var r wireRun
	err := c.doJSON(ctx, http.MethodPost, "/v1/deployments/"+id+"/run", nil, &r)
	return r, err
}

func (c *apiClient) unpause(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodPost, "/v1/deployments/"+id+"/unpause", nil, nil)
}

// maxPages bounds every paging loop.
const maxPages = 100000

// listAll pages through a listing (path without page) and returns every item.
func listAll[T any](ctx context.Context, c *apiClient, path string, q url.Values) ([]T, error) {
	var out []T
	for range maxPages {
		var page wirePage[T]
		if err := c.doJSON(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return out, err
		}
		out = append(out, page.Data...)
		if page.NextPage == nil || *page.NextPage == "" {
			return out, nil
		}
		q.Set("page", *page.NextPage)
	}
	return out, fmt.Errorf("%s: more than %d pages", path, maxPages)
}

// allRuns lists every run (newest first) matching the filters.
func (c *apiClient) allRuns(ctx context.Context, filters url.Values) ([]wireRun, error) {
	q := url.Values{"limit": {"1000"}}
	for k, v := range filters {
		q[k] = v
	}
	return listAll[wireRun](ctx, c, "/v1/deployment_runs", q)
}

// allDeployments lists every deployment, archived included.
func (c *apiClient) allDeployments(ctx context.Context) ([]wireDeployment, error) {
	return listAll[wireDeployment](ctx, c, "/v1/deployments", url.Values{"limit": {"100"}, "include_archived": {"true"}})
}

// metrics scrapes /metrics (no key needed).
func (c *apiClient) metrics(ctx context.Context) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// socketClient reaches the admin routes over the daemon's Unix socket.
func socketClient(path string) *http.Client {
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

// backup streams GET /admin/backup into file.
func (p *daemonProc) backup(ctx context.Context, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandbox0d/admin/backup", nil)
	if err != nil {
		return err
	}
	resp, err := p.admin.Do(req)
	if err != nil {
		return fmt.Errorf("admin backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin backup: %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("admin backup: %w", err)
	}
	return f.Close()
}
