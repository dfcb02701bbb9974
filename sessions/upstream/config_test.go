package upstream_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	cases := []struct {
		name string
		cfg  upstream.Config
		key  string
		want string
	}{
		{"no url", upstream.Config{APIKey: "k"}, "upstream.url", "is required"},
		{"relative url", upstream.Config{URL: "api.anthropic.com", APIKey: "k"}, "upstream.url", "absolute http(s) URL"},
		{"ftp url", upstream.Config{URL: "ftp://host", APIKey: "k"}, "upstream.url", "absolute http(s) URL"},
		{"credentials in url", upstream.Config{URL: "https://user:pw@host", APIKey: "k"}, "upstream.url", "must not carry credentials"},
		{"query in url", upstream.Config{URL: "https://host?x=1", APIKey: "k"}, "upstream.url", "query"},
		{"no key", upstream.Config{URL: "https://host"}, "upstream.api_key", "is required"},
		{"both keys", upstream.Config{URL: "https://host", APIKey: "k", APIKeyFile: empty}, "upstream.api_key_file", "not both"},
		{"missing key file", upstream.Config{URL: "https://host", APIKeyFile: filepath.Join(dir, "nope")}, "upstream.api_key_file", "cannot be read"},
		{"empty key file", upstream.Config{URL: "https://host", APIKeyFile: empty}, "upstream.api_key_file", "is empty"},
		{"key with newline", upstream.Config{URL: "https://host", APIKey: "a\nb"}, "upstream.api_key", "cannot be sent in an HTTP header"},
		{"negative timeout", upstream.Config{URL: "https://host", APIKey: "k", RequestTimeout: -1}, "upstream.request_timeout", "negative"},
		{"negative window", upstream.Config{URL: "https://host", APIKey: "k", RetryWindow: -1}, "upstream.retry_window", "negative"},
		{"negative concurrency", upstream.Config{URL: "https://host", APIKey: "k", MaxConcurrency: -1}, "upstream.max_concurrency", "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := upstream.New(tc.cfg)
			var ce *upstream.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.key, ce.Key)
			assert.Contains(t, err.Error(), tc.key+": ")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "a\nb")
		})
	}
}

// The key may come from a file such as a systemd credential; surrounding
// whitespace is trimmed, and a base URL with a path prefix is kept.
func TestKeyFromFileAndPathPrefix(t *testing.T) {
	fake := newLoopback(t)
	mux := newPrefixed(t, "/managed", fake)
	keyFile := filepath.Join(t.TempDir(), "upstream-key")
	require.NoError(t, os.WriteFile(keyFile, []byte("  "+fake.APIKey()+"\n"), 0o600))
	b, err := upstream.New(upstream.Config{URL: mux + "/managed/", APIKeyFile: keyFile})
	require.NoError(t, err)

	ref, err := b.ResolveAgent(t.Context(), "agent_1", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(3), ref.Version)
	assert.Equal(t, "/v1/agents/agent_1", fake.RequestsTo(fakeupstream.RouteGetAgent)[0].Path)
}

func TestNameAndDefaults(t *testing.T) {
	b, err := upstream.New(upstream.Config{URL: "https://api.anthropic.com", APIKey: "k"})
	require.NoError(t, err)
	assert.Equal(t, "upstream", b.Name())
	assert.Zero(t, b.InFlight())
}

// Plain http is only for loopback: beyond it the daemon's key and every
// repository token would be readable on the wire. The refusal names the
// way out, and the way out works.
func TestPlaintextUpstreamBeyondLoopbackIsRefused(t *testing.T) {
	for _, url := range []string{"http://10.0.0.5", "http://10.0.0.5:8080/v1", "http://api.example.com", "http://[2001:db8::1]"} {
		t.Run(url, func(t *testing.T) {
			_, err := upstream.New(upstream.Config{URL: url, APIKey: "k"})
			var ce *upstream.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "upstream.url", ce.Key)
			assert.Contains(t, err.Error(), "upstream.allow_plaintext: true")

			_, err = upstream.New(upstream.Config{URL: url, APIKey: "k", AllowPlaintext: true})
			require.NoError(t, err)
		})
	}
	for _, url := range []string{"https://10.0.0.5", "http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000", "http://127.8.9.10"} {
		t.Run(url, func(t *testing.T) {
			_, err := upstream.New(upstream.Config{URL: url, APIKey: "k"})
			require.NoError(t, err)
		})
	}
}
