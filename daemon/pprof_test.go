package daemon_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Profiles are off unless debug.pprof is set, and even then only the Unix
// socket serves them.
func TestPprofIsOffByDefaultAndSocketOnly(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		cfg := baseConfig(t.TempDir())
		cfg.Listen = "127.0.0.1:0"
		cfg.Debug.Pprof = on
		r := start(t, cfg, daemon.Options{})
		tcp := "http://" + r.d.TCPAddr().String()
		sock := socketClient(cfg.Socket)
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		assert.Equal(t, want, get(t, sock, "http://s/admin/debug/pprof/heap"), "pprof=%v over the socket", on)
		assert.Equal(t, want, get(t, sock, "http://s/admin/debug/pprof/"), "pprof=%v index over the socket", on)
		assert.Equal(t, http.StatusForbidden, get(t, http.DefaultClient, tcp+"/admin/debug/pprof/heap"), "pprof=%v over TCP", on)
		r.stop(t)
	}
}
