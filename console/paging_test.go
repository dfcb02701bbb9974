package console_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

var (
	rowLink  = regexp.MustCompile(`<a class="name" href="/console/deployments/(depl_[0-9A-Za-z]+)">`)
	nextLink = regexp.MustCompile(`<a rel="next" href="([^"]+)">`)
)

// walk follows a listing's next links from path and returns the ids in
// order and the number of pages.
func walk(t *testing.T, base, path string) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	for path != "" && pages < 20 {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		pages++
		for _, m := range rowLink.FindAllStringSubmatch(string(body), -1) {
			ids = append(ids, m[1])
		}
		path = ""
		if m := nextLink.FindStringSubmatch(string(body)); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	return ids, pages
}

// Pages follow the API's cursor: every deployment once, newest first, and
// filters the store has no index for (name contains, archived) resume
// right after the last row shown, so nothing is skipped or repeated.
func TestDeploymentsPagingAndFilters(t *testing.T) {
	cfg := rigConfig(t)
	cfg.Backend = "none"
	r := startRig(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	c, ctx := r.client(), t.Context()
	var all, alpha, archived []string
	for i := range 130 {
		name := fmt.Sprintf("beta-%03d", i)
		if i%2 == 0 {
			name = fmt.Sprintf("alpha-%03d", i)
		}
		d, err := c.Beta.Deployments.New(ctx, deploymentParams(name, "agent_a", "", ""))
		require.NoError(t, err)
		if i%10 == 3 {
			_, err = c.Beta.Deployments.Archive(ctx, d.ID, anthropic.BetaDeploymentArchiveParams{})
			require.NoError(t, err)
			archived = append([]string{d.ID}, archived...)
			continue
		}
		all = append([]string{d.ID}, all...) // newest first
		if i%2 == 0 {
			alpha = append([]string{d.ID}, alpha...)
		}
	}

	ids, pages := walk(t, r.sockURL, "/console/")
	assert.Equal(t, all, ids, "every unarchived deployment once, newest first")
	assert.Equal(t, 3, pages)

	ids, pages = walk(t, r.sockURL, "/console/?name=ALPHA")
	assert.Equal(t, alpha, ids, "name contains, across pages, case-insensitive")
	assert.Equal(t, 2, pages)

	ids, _ = walk(t, r.sockURL, "/console/?state=archived")
	assert.Equal(t, archived, ids, "archived only")

	ids, _ = walk(t, r.sockURL, "/console/?state=all")
	assert.Len(t, ids, 130)

	resp, err := http.Get(r.sockURL + "/console/?state=bogus")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "state: must be active, paused, archived or all")

	resp, err = http.Get(r.sockURL + "/console/?page=not-a-cursor")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "invalid cursor", "the API's own message")
}
