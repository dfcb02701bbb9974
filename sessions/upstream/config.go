package upstream

import (
	"fmt"
	"github.com/sandbox0/sandbox0d/internal/configerr"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults for the optional Config fields.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultRetryWindow    = 2 * time.Minute
	DefaultMaxConcurrency = 64
	// DefaultMaxProxyBody is the proxy's request body cap: the Files API
	// takes uploads of up to 500 MB, so the cap sits just above that.
	DefaultMaxProxyBody int64 = 512 << 20
)

// lookupConnections is the connection headroom beyond MaxConcurrency for
// agent and reference lookups, which do not take a creation slot.
const lookupConnections = 8

// Config configures the upstream backend. Keys in errors are the daemon's
// config keys (upstream.url …).
type Config struct {
	URL            string        // upstream.url: base URL, e.g. https://api.anthropic.com
	APIKey         string        // upstream.api_key
	APIKeyFile     string        // upstream.api_key_file: alternative, read from a file (e.g. a systemd credential), whitespace trimmed
	RequestTimeout time.Duration // upstream.request_timeout: per HTTP call (default 30s)
	RetryWindow    time.Duration // upstream.retry_window: how long transient failures are retried (default 2m)
	MaxConcurrency int           // upstream.max_concurrency: session creations in flight (default 16)
	MaxProxyBody   int64         // upstream.max_proxy_body: bytes a proxied request body may carry (default 512 MiB)
	// AllowPlaintext (upstream.allow_plaintext) permits an http:// URL to a
	// host beyond loopback, e.g. a TLS-terminating sidecar on another
	// address. Without it the key and every token would cross the network
	// in the clear, so such a URL is refused.
	AllowPlaintext bool
	// HTTPClient is optional; by default the backend builds a transport with
	// a bounded connection pool. Its Timeout is not used: every call has
	// RequestTimeout, and proxied streams must not time out.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// ConfigError is an invalid config value named by its key, e.g.
// "local.agents[0].command" (the type every config error shares).
type ConfigError = configerr.Error

// settings is a validated Config with defaults applied.
type settings struct {
	base           *url.URL
	apiKey         string
	requestTimeout time.Duration
	retryWindow    time.Duration
	maxConcurrency int
	maxProxyBody   int64
	apiClient      *http.Client
	proxyTransport http.RoundTripper
	log            *slog.Logger
}

func (c Config) validate() (settings, error) {
	s := settings{
		requestTimeout: c.RequestTimeout,
		retryWindow:    c.RetryWindow,
		maxConcurrency: c.MaxConcurrency,
		maxProxyBody:   c.MaxProxyBody,
		log:            c.Logger,
	}
	var err error
	if s.base, err = parseBaseURL(c.URL); err != nil {
		return s, err
	}
	if s.base.Scheme == "http" && !c.AllowPlaintext && !isLoopbackHost(s.base.Hostname()) {
		return s, &ConfigError{Key: "upstream.url", Problem: fmt.Sprintf(
			"%s is plain http to a host beyond loopback: the upstream key and every repository token would cross the network unencrypted; "+
				"use https://, or set upstream.allow_plaintext: true if a TLS-terminating proxy sits in between", s.base.Redacted())}
	}
	if s.apiKey, err = loadAPIKey(c.APIKey, c.APIKeyFile); err != nil {
		return s, err
	}
	switch {
	case c.RequestTimeout < 0:
		return s, &ConfigError{Key: "upstream.request_timeout", Problem: "must not be negative"}
	case c.RequestTimeout == 0:
		s.requestTimeout = DefaultRequestTimeout
	}
	switch {
	case c.RetryWindow < 0:
		return s, &ConfigError{Key: "upstream.retry_window", Problem: "must not be negative"}
	case c.RetryWindow == 0:
		s.retryWindow = DefaultRetryWindow
	}
	switch {
	case c.MaxConcurrency < 0:
		return s, &ConfigError{Key: "upstream.max_concurrency", Problem: "must not be negative"}
	case c.MaxConcurrency == 0:
		s.maxConcurrency = DefaultMaxConcurrency
	}
	switch {
	case c.MaxProxyBody < 0:
		return s, &ConfigError{Key: "upstream.max_proxy_body", Problem: "must not be negative"}
	case c.MaxProxyBody == 0:
		s.maxProxyBody = DefaultMaxProxyBody
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient != nil {
		s.apiClient = &http.Client{Transport: c.HTTPClient.Transport}
		s.proxyTransport = c.HTTPClient.Transport
		if s.proxyTransport == nil {
			s.proxyTransport = http.DefaultTransport
		}
	} else {
		api, proxy := defaultTransports(s.maxConcurrency, s.requestTimeout)
		s.apiClient = &http.Client{Transport: api}
		s.proxyTransport = proxy
	}
	// Redirects would resend the daemon's key to wherever they point.
	s.apiClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, nil
}

// isLoopbackHost is true for localhost and loopback IP literals: traffic to
// them never leaves the machine. Other names are not resolved here (a name
// may resolve differently later). Names under .invalid (RFC 6761) never
// resolve, so they reach only a custom in-process transport such as the
// test fake's.
func isLoopbackHost(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".invalid") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseBaseURL(raw string) (*url.URL, error) {
	const key = "upstream.url"
	if strings.TrimSpace(raw) == "" {
		return nil, &ConfigError{Key: key, Problem: "is required with backend: upstream"}
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, &ConfigError{Key: key, Problem: "is not a URL", Err: err}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{Key: key, Problem: fmt.Sprintf("must be an absolute http(s) URL such as https://api.anthropic.com (got %q)", raw)}
	}
	if u.User != nil {
		return nil, &ConfigError{Key: key, Problem: "must not carry credentials; use upstream.api_key"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, &ConfigError{Key: key, Problem: "must not have a query or fragment"}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func loadAPIKey(key, file string) (string, error) {
	switch {
	case key != "" && file != "":
		return "", &ConfigError{Key: "upstream.api_key_file", Problem: "set either upstream.api_key or upstream.api_key_file, not both"}
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", &ConfigError{Key: "upstream.api_key_file", Problem: "cannot be read", Err: err}
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return "", &ConfigError{Key: "upstream.api_key_file", Problem: fmt.Sprintf("%s is empty", file)}
		}
		return key, checkHeaderValue("upstream.api_key_file", key)
	case key == "":
		return "", &ConfigError{Key: "upstream.api_key", Problem: "is required with backend: upstream (or set upstream.api_key_file)"}
	}
	return strings.TrimSpace(key), checkHeaderValue("upstream.api_key", strings.TrimSpace(key))
}

// checkHeaderValue refuses a key that cannot be sent as a header value,
// without echoing the key.
func checkHeaderValue(configKey, v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return &ConfigError{Key: configKey, Problem: "contains characters that cannot be sent in an HTTP header"}
		}
	}
	if v == "" {
		return &ConfigError{Key: configKey, Problem: "is empty"}
	}
	return nil
}

// defaultTransports builds the backend's connection pools. Session
// creations and lookups share one pool bounded to what they can use at
// once; the proxy gets its own pool because an SSE stream holds a
// connection for as long as the client listens, and a few hundred watchers
// must not starve session creation.
func defaultTransports(maxConcurrency int, requestTimeout time.Duration) (api, proxy *http.Transport) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	conns := maxConcurrency + lookupConnections
	api = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxConnsPerHost:       conns,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: requestTimeout,
	}
	proxy = api.Clone()
	proxy.MaxConnsPerHost = 0
	proxy.MaxIdleConns = 64
	proxy.MaxIdleConnsPerHost = 64
	return api, proxy
}
