package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `webhooks test URL` against a daemon with no endpoint says a configured
// endpoint is needed and how to add one.
func TestWebhooksTestNeedsAConfiguredEndpoint(t *testing.T) {
	rd := startRealDaemon(t, nil)
	res := runCLI(t, cronNow, nil, nil, "--socket", rd.socket, "webhooks", "test", "https://hooks.example.com/in")
	require.Error(t, res.err)
	msg := res.err.Error()
	assert.Contains(t, msg, `url: "https://hooks.example.com/in": webhooks test needs a configured endpoint and none is configured`)
	assert.Contains(t, msg, "add it under webhooks.endpoints in the config file")
	assert.Contains(t, msg, "SIGHUP")
	assert.Empty(t, res.stdout)
}
