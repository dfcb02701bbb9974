package local

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// surrogateOrNUL finds what strict JSON readers refuse in an escape, once
// well-formed surrogate pairs are taken out.
var (
	surrogatePair  = regexp.MustCompile(`(?i)\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}`)
	surrogateOrNUL = regexp.MustCompile(`(?i)\\u(d[89a-f][0-9a-f]{2}|0000)`)
)

func assertStrictJSON(t *testing.T, where string, data []byte) {
	t.Helper()
	assert.True(t, utf8.Valid(data), "%s: invalid UTF-8 in %q", where, data)
	assert.NotContains(t, string(data), "\x00", where)
	unpaired := surrogatePair.ReplaceAllString(string(data), "")
	assert.Empty(t, surrogateOrNUL.FindAllString(unpaired, -1), "%s: %s", where, data)
}

// A harness printing lone surrogates, NUL and invalid UTF-8, in its own
// JSON events and in plain text and stderr, gets them stored and served as
// U+FFFD: every event is strict JSON.
func TestHarnessOutputWithSurrogatesAndNULIsCleaned(t *testing.T) {
	script := `printf '%s\n' '{"type":"agent.message","content":[{"type":"text","text":"lone \ud800 and \udfff, nul \u0000, pair \ud83d\ude00"}]}'
printf '{"type":"agent.message","content":[{"type":"text","text":"raw \377 byte"}]}\n'
printf 'plain text with a nul \000 and \377\n'
printf 'stderr nul \000 here\n' >&2
exit 3`
	rig := newRig(t, []Agent{shAgent("agent_dirty", script)}, nil)
	id := rig.create("agent_dirty", func(req *sessions.CreateRequest) {
		// Input is held to the same rule.
		req.InitialEvents = []json.RawMessage{json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"in \ud800 \u0000"}]}`)}
	})
	rig.waitDone(id)

	texts := rig.texts(id)
	require.Len(t, texts, 3, rig.dump(id))
	assert.Equal(t, "lone \uFFFD and \uFFFD, nul \uFFFD, pair 😀", texts[0])
	assert.Equal(t, "raw \uFFFD byte", texts[1])
	assert.Equal(t, "plain text with a nul \uFFFD and \uFFFD", texts[2])
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "stderr nul \uFFFD here")
	for _, ev := range rig.events(id) {
		assertStrictJSON(t, "stored "+ev.Type, ev.JSON)
	}
	assert.Contains(t, rig.dump(id), `"in \ufffd \ufffd"`)

	resp, err := http.Get(rig.srv.URL + "/v1/sessions/" + id + "/events?limit=100")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.True(t, strings.Contains(string(body), "lone "), string(body))
	assertStrictJSON(t, "served", body)
}
