package deployments

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A session created directly is refused for the same control characters as
// a deployment, naming the field: a NUL in the first message would otherwise
// be accepted and then fail the harness ("environment variable contains NUL").
func TestSessionCreateRefusesControlCharacters(t *testing.T) {
	for body, field := range map[string]string{
		`{"agent":"agent_a","environment_id":"env_a","initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi\u0000"}]}]}`: "initial_events[0].content[0].text",
		`{"agent":"agent_a","environment_id":"env_a","title":"a\u0007b"}`:                                                                       "title",
		`{"agent":"agent_a","environment_id":"env_a","metadata":{"k":"v\u0000"}}`:                                                               "metadata.k",
	} {
		_, err := DecodeSessionCreate([]byte(body))
		var verr *Error
		require.True(t, errors.As(err, &verr), "%s: want a field error, got %v", body, err)
		assert.Contains(t, verr.Error(), field, body)
	}
	_, err := DecodeSessionCreate([]byte(`{"agent":"agent_a","environment_id":"env_a","title":"fine"}`))
	assert.NoError(t, err)
}
