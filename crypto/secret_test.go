package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resourceWithToken mimics how other packages will embed a Secret.
type resourceWithToken struct {
	URL   string `json:"url"`
	Token Secret `json:"authorization_token"`
	token Secret // unexported: fmt cannot call methods on it
}

func TestSecretNeverPrintsThroughFmt(t *testing.T) {
	secret := NewSecret(testToken)
	nested := resourceWithToken{URL: "https://github.com/o/r", Token: secret, token: secret}
	tests := []struct {
		name   string
		format string
		arg    any
	}{
		{"%v", "%v", secret},
		{"%+v", "%+v", secret},
		{"%#v", "%#v", secret},
		{"%s", "%s", secret},
		{"%q", "%q", secret},
		{"%x", "%x", secret},
		{"%d (bad verb)", "%d", secret},
		{"pointer %v", "%v", &secret},
		{"struct %v", "%v", nested},
		{"struct %+v", "%+v", nested},
		{"struct %#v", "%#v", nested},
		{"struct pointer %+v", "%+v", &nested},
		{"slice %v", "%v", []Secret{secret}},
		{"map %v", "%v", map[string]Secret{"t": secret}},
		{"wrapped in an error", "%v", fmt.Errorf("clone failed with token %v: %w", secret, errors.New("x"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := fmt.Sprintf(tt.format, tt.arg)
			assert.NotContains(t, out, testToken)
			assert.NotContains(t, out, "TESTtoken")
			assert.NotContains(t, out, fmt.Sprintf("%x", testToken), "hex of the token")
		})
	}
	assert.Equal(t, "[redacted]", fmt.Sprint(secret))
	assert.Equal(t, "[redacted]", secret.String())
	assert.Equal(t, "[redacted]", fmt.Sprintf("%#v", secret))
}

func TestSecretNeverEncodesToJSON(t *testing.T) {
	secret := NewSecret(testToken)
	for name, value := range map[string]any{
		"value":   secret,
		"pointer": &secret,
		"struct":  resourceWithToken{Token: secret, token: secret},
		"map key": map[Secret]int{secret: 1},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := json.Marshal(value)
			require.NoError(t, err)
			assert.NotContains(t, string(out), testToken)
			assert.Contains(t, string(out), "[redacted]")
		})
	}
}

func TestSecretNeverLogsThroughSlog(t *testing.T) {
	secret := NewSecret(testToken)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(newHandler(&buf))
			log.Info("attr", "token", secret)
			log.Info("any", slog.Any("token", secret))
			log.Info("pointer", "token", &secret)
			log.Info("group", slog.Group("resource", "token", secret))
			log.Info("struct", "resource", resourceWithToken{Token: secret, token: secret})
			log.With("token", secret).Info("with")

			assert.NotContains(t, buf.String(), testToken)
			assert.Contains(t, buf.String(), "[redacted]")
		})
	}
}

func TestSecretDecodesFromJSONAndReveals(t *testing.T) {
	var req struct {
		Token *Secret `json:"authorization_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"authorization_token":"`+testToken+`"}`), &req))
	require.NotNil(t, req.Token)
	assert.Equal(t, testToken, req.Token.Reveal())

	var absent struct {
		Token Secret `json:"authorization_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"authorization_token":null}`), &absent))
	assert.True(t, absent.Token.IsZero())

	err := json.Unmarshal([]byte(`{"authorization_token":12345}`), &absent)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "12345")

	text, err := NewSecret(testToken).MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "[redacted]", string(text))
	assert.Equal(t, "", Secret{}.Reveal())
}
