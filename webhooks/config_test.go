package webhooks

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidation(t *testing.T) {
	key := Secret(newKey(1))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hook.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(string(key)+"\n"), 0o600))
	cases := []struct {
		name  string
		ep    EndpointConfig
		field string // "" when valid
	}{
		{"https anywhere", EndpointConfig{URL: "https://hooks.example.com/x", SigningKey: key}, ""},
		{"http to loopback", EndpointConfig{URL: "http://127.0.0.1:9000/x", SigningKey: key}, ""},
		{"http to localhost", EndpointConfig{URL: "http://localhost/x", SigningKey: key}, ""},
		{"http to ::1", EndpointConfig{URL: "http://[::1]:80/x", SigningKey: key}, ""},
		{"http elsewhere", EndpointConfig{URL: "http://hooks.example.com/x", SigningKey: key}, "endpoints[0].url"},
		{"http elsewhere allowed", EndpointConfig{URL: "http://hooks.example.com/x", SigningKey: key, AllowPlaintext: true}, ""},
		{"not a url", EndpointConfig{URL: "hooks.example.com", SigningKey: key}, "endpoints[0].url"},
		{"credentials in url", EndpointConfig{URL: "https://u:p@hooks.example.com/", SigningKey: key}, "endpoints[0].url"},
		{"no key", EndpointConfig{URL: "https://hooks.example.com/x"}, "endpoints[0].signing_key"},
		{"two sources", EndpointConfig{URL: "https://hooks.example.com/x", SigningKey: key, SigningKeyFile: keyFile}, "endpoints[0].signing_key"},
		{"key file", EndpointConfig{URL: "https://hooks.example.com/x", SigningKeyFile: keyFile}, ""},
		{"missing key file", EndpointConfig{URL: "https://hooks.example.com/x", SigningKeyFile: filepath.Join(dir, "nope")}, "endpoints[0].signing_key_file"},
		{"not whsec", EndpointConfig{URL: "https://hooks.example.com/x", SigningKey: "c2VjcmV0"}, "endpoints[0].signing_key"},
		{"rotation", EndpointConfig{URL: "https://hooks.example.com/x", SigningKeys: []Secret{key, Secret(newKey(2))}}, ""},
		{"bad second key", EndpointConfig{URL: "https://hooks.example.com/x", SigningKeys: []Secret{key, "whsec_%%%"}}, "endpoints[0].signing_keys[1]"},
		{"unknown event", EndpointConfig{URL: "https://hooks.example.com/x", SigningKey: key, Events: []string{"deployment.created", "deployment.deleted"}}, "endpoints[0].events[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Endpoints = []EndpointConfig{tc.ep}
			err := cfg.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Key)
			assert.NotContains(t, err.Error(), string(key)[6:], "a key never appears in an error")
		})
	}

	cfg := DefaultConfig()
	cfg.Endpoints = []EndpointConfig{{URL: "https://a.example/", SigningKey: key}, {URL: "https://a.example/", SigningKey: key}}
	var fe *FieldError
	require.ErrorAs(t, cfg.Validate(), &fe)
	assert.Equal(t, "endpoints[1].url", fe.Key)
}

// signing_key_file names a systemd credential when it has no slash.
func TestSigningKeyFromACredential(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "webhook-key"), []byte(newKey(5)), 0o600))
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	cfg := DefaultConfig()
	cfg.Endpoints = []EndpointConfig{{URL: "https://hooks.example.com/x", SigningKeyFile: "webhook-key"}}
	r, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, r.endpoints[0].signers, 1)
}

// A Secret prints redacted however it is formatted.
func TestSecretsNeverPrint(t *testing.T) {
	ep := EndpointConfig{URL: "https://x.example/", SigningKey: Secret(newKey(1)), SigningKeys: []Secret{Secret(newKey(2))}}
	for _, s := range []string{fmt.Sprint(ep), fmt.Sprintf("%+v", ep), fmt.Sprintf("%#v", ep), fmt.Sprintf("%v", ep.SigningKey)} {
		assert.NotContains(t, s, newKey(1)[6:])
		assert.NotContains(t, s, newKey(2)[6:])
	}
	text, err := ep.SigningKey.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "[redacted]", string(text))
}
