package cli

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// On TCP the daemon wants a key; the CLI's error names the variable it
// reads the key from, whether the key is missing or refused.
func TestMissingKeyOnTCPNamesTheVariable(t *testing.T) {
	rd := startRealDaemon(t, func(c *daemon.Config) { c.Listen = "127.0.0.1:0" })
	addr := "http://" + rd.d.TCPAddr().String()

	missing := runCLI(t, cronNow, nil, nil, "--addr", addr, "deployments", "list")
	require.Error(t, missing.err)
	var apiErr *APIError
	require.ErrorAs(t, missing.err, &apiErr)
	assert.Equal(t, 401, apiErr.Status)
	assert.Contains(t, missing.err.Error(), "SANDBOX0D_API_KEY is not set: export SANDBOX0D_API_KEY=<key>")
	assert.Contains(t, missing.err.Error(), "sandbox0d apikeys create")

	wrong := runCLI(t, cronNow, map[string]string{envAPIKey: "s0d_not_a_key"}, nil, "--addr", addr, "deployments", "list")
	require.Error(t, wrong.err)
	assert.Contains(t, wrong.err.Error(), "the key in SANDBOX0D_API_KEY was refused")
}

// The socket needs no key, so a 401 there (from a proxy, say) gets no
// hint about a variable the CLI does not send on the socket.
func TestAuthHintOnlyOnTCP(t *testing.T) {
	socket := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"no"}}`))
	}))
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "deployments", "list")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "no (authentication_error, HTTP 401)")
	assert.NotContains(t, res.err.Error(), "SANDBOX0D_API_KEY")
}
