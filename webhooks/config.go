package webhooks

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Config is the webhooks section of the daemon configuration.
type Config struct {
	Endpoints []EndpointConfig `mapstructure:"endpoints"`
	// OrganizationID and WorkspaceID fill the payload's data fields of the
	// same names (a self-hosted install has neither).
	OrganizationID string `mapstructure:"organization_id"`
	WorkspaceID    string `mapstructure:"workspace_id"`
	// RetrySchedule is the wait before each retry; after the last one a
	// delivery is failed.
	RetrySchedule []time.Duration `mapstructure:"retry_schedule"`
	// Timeout bounds one attempt: a 2xx must arrive within it.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retention is how long delivered and failed deliveries are kept.
	Retention time.Duration `mapstructure:"retention"`
	// MaxConcurrency bounds attempts in flight in total, and
	// MaxConcurrencyPerEndpoint per endpoint, so a slow endpoint holds at
	// most its own share.
	MaxConcurrency            int `mapstructure:"max_concurrency"`
	MaxConcurrencyPerEndpoint int `mapstructure:"max_concurrency_per_endpoint"`
}

// EndpointConfig is one receiver.
type EndpointConfig struct {
	URL string `mapstructure:"url"`
	// One of SigningKey, SigningKeyFile or SigningKeys (whsec_…). With
	// several keys every delivery carries one signature per key, so a
	// receiver can move to a new key without a gap.
	SigningKey     Secret   `mapstructure:"signing_key"`
	SigningKeyFile string   `mapstructure:"signing_key_file"`
	SigningKeys    []Secret `mapstructure:"signing_keys"`
	// Events filters the types sent; empty means every type.
	Events []string `mapstructure:"events"`
	// AllowPlaintext permits http:// to a non-loopback host.
	AllowPlaintext bool `mapstructure:"allow_plaintext"`
}

// Secret is a signing key: it never prints, so a logged config or an
// error cannot leak it.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// MarshalText redacts the key in JSON and YAML output too.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Defaults.
const (
	DefaultOrganizationID            = "org_sandbox0d"
	DefaultWorkspaceID               = "wrkspc_default"
	DefaultTimeout                   = 15 * time.Second
	DefaultRetention                 = 7 * 24 * time.Hour
	DefaultMaxConcurrency            = 64
	DefaultMaxConcurrencyPerEndpoint = 8
)

// DefaultRetrySchedule is the Standard Webhooks schedule: attempts at 0, 5 s,
// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the first.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultConfig returns a config with every default and no endpoint.
func DefaultConfig() Config {
	return Config{
		OrganizationID:            DefaultOrganizationID,
		WorkspaceID:               DefaultWorkspaceID,
		RetrySchedule:             append([]time.Duration(nil), DefaultRetrySchedule...),
		Timeout:                   DefaultTimeout,
		Retention:                 DefaultRetention,
		MaxConcurrency:            DefaultMaxConcurrency,
		MaxConcurrencyPerEndpoint: DefaultMaxConcurrencyPerEndpoint,
	}
}

// withDefaults fills unset (zero) fields, so a Config built in code needs
// only its endpoints. An explicitly empty retry_schedule means no retries.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.OrganizationID == "" {
		c.OrganizationID = d.OrganizationID
	}
	if c.WorkspaceID == "" {
		c.WorkspaceID = d.WorkspaceID
	}
	if c.RetrySchedule == nil {
		c.RetrySchedule = d.RetrySchedule
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = d.MaxConcurrency
	}
	if c.MaxConcurrencyPerEndpoint == 0 {
		c.MaxConcurrencyPerEndpoint = d.MaxConcurrencyPerEndpoint
	}
	return c
}

// FieldError names the config key (under webhooks.) that is wrong.
type FieldError struct {
	Key     string
	Message string
}

func (e *FieldError) Error() string { return "webhooks." + e.Key + ": " + e.Message }

// endpoint is a validated endpoint with its keys loaded.
type endpoint struct {
	url     string
	signers []*standardwebhooks.Webhook
	events  map[string]bool // nil: every type
}

func (e *endpoint) wants(typ string) bool { return e.events == nil || e.events[typ] }

// resolved is a validated config, ready to deliver with.
type resolved struct {
	Config
	endpoints []*endpoint
}

// resolve validates c and loads every signing key. Errors name the key and
// never contain a key's value.
func (c Config) resolve() (*resolved, error) {
	c = c.withDefaults()
	if c.Timeout < 0 {
		return nil, &FieldError{"timeout", "must be positive"}
	}
	if c.Retention < 0 {
		return nil, &FieldError{"retention", "must be positive"}
	}
	if c.MaxConcurrency < 1 {
		return nil, &FieldError{"max_concurrency", "must be at least 1"}
	}
	if c.MaxConcurrencyPerEndpoint < 1 {
		return nil, &FieldError{"max_concurrency_per_endpoint", "must be at least 1"}
	}
	for i, d := range c.RetrySchedule {
		if d <= 0 {
			return nil, &FieldError{fmt.Sprintf("retry_schedule[%d]", i), "must be positive"}
		}
	}
	if strings.TrimSpace(c.OrganizationID) == "" {
		return nil, &FieldError{"organization_id", "must not be empty"}
	}
	if strings.TrimSpace(c.WorkspaceID) == "" {
		return nil, &FieldError{"workspace_id", "must not be empty"}
	}
	r := &resolved{Config: c}
	seen := map[string]bool{}
	for i, ec := range c.Endpoints {
		ep, err := ec.resolve(fmt.Sprintf("endpoints[%d]", i))
		if err != nil {
			return nil, err
		}
		if seen[ep.url] {
			return nil, &FieldError{fmt.Sprintf("endpoints[%d].url", i), fmt.Sprintf("%s is listed twice", ep.url)}
		}
		seen[ep.url] = true
		r.endpoints = append(r.endpoints, ep)
	}
	return r, nil
}

// Validate checks c, loading key files, without keeping anything.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

func (ec EndpointConfig) resolve(at string) (*endpoint, error) {
	u, err := url.Parse(ec.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, &FieldError{at + ".url", fmt.Sprintf("must be an absolute http(s) URL, got %q", ec.URL)}
	}
	if u.User != nil {
		return nil, &FieldError{at + ".url", "must not carry credentials; the signature authenticates the sender"}
	}
	if u.Scheme == "http" && !ec.AllowPlaintext && !isLoopback(u.Hostname()) {
		return nil, &FieldError{at + ".url", fmt.Sprintf("plain http:// is only allowed to a loopback host (got %s); use https:// or set allow_plaintext: true", u.Host)}
	}
	ep := &endpoint{url: ec.URL}
	var keys []Secret
	sources := 0
	if ec.SigningKey != "" {
		sources++
		keys = append(keys, ec.SigningKey)
	}
	if ec.SigningKeyFile != "" {
		sources++
		k, err := readKeyFile(ec.SigningKeyFile)
		if err != nil {
			return nil, &FieldError{at + ".signing_key_file", err.Error()}
		}
		keys = append(keys, k)
	}
	if len(ec.SigningKeys) > 0 {
		sources++
		keys = append(keys, ec.SigningKeys...)
	}
	switch {
	case sources == 0:
		return nil, &FieldError{at + ".signing_key", "must be set (or signing_key_file, or signing_keys): every delivery is signed"}
	case sources > 1:
		return nil, &FieldError{at + ".signing_key", "set only one of signing_key, signing_key_file and signing_keys"}
	}
	for i, k := range keys {
		key := strings.TrimSpace(string(k))
		field := at + ".signing_key"
		if len(ec.SigningKeys) > 0 {
			field = fmt.Sprintf("%s.signing_keys[%d]", at, i)
		} else if ec.SigningKeyFile != "" {
			field = at + ".signing_key_file"
		}
		if !strings.HasPrefix(key, "whsec_") || len(key) == len("whsec_") {
			return nil, &FieldError{field, "must be a whsec_ key (whsec_ followed by base64)"}
		}
		wh, err := standardwebhooks.NewWebhook(key)
		if err != nil {
			return nil, &FieldError{field, "is not valid base64 after whsec_"}
		}
		ep.signers = append(ep.signers, wh)
	}
	if len(ec.Events) > 0 {
		ep.events = map[string]bool{}
		for i, t := range ec.Events {
			if !event.Known(t) {
				return nil, &FieldError{fmt.Sprintf("%s.events[%d]", at, i), fmt.Sprintf("unknown event type %q (known: %s)", t, strings.Join(event.Types, ", "))}
			}
			ep.events[t] = true
		}
	}
	return ep, nil
}

// readKeyFile reads a key from a file, or from the systemd credential of
// that name when the name has no slash and $CREDENTIALS_DIRECTORY is set.
func readKeyFile(name string) (Secret, error) {
	path := name
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && !strings.ContainsRune(name, '/') {
		path = filepath.Join(dir, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))
	}
	return Secret(strings.TrimSpace(string(b))), nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
