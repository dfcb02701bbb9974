package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// A plain-HTTP request through the proxy reaches the allowed host with
// that host's name, whatever Host header the client sent.
func TestProxiedRequestCarriesTheCheckedHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host="+r.Host)
	}))
	defer srv.Close()
	p, err := New(Config{})
	require.NoError(t, err)
	defer p.Close()
	sock, release, err := p.Listen("ses_host", sandbox.Network{Limited: true, AllowedHosts: []string{"127.0.0.1"}, Environment: "env"})
	require.NoError(t, err)
	defer release()

	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer c.Close()
	target := strings.TrimPrefix(srv.URL, "http://")
	_, err = io.WriteString(c, "GET "+srv.URL+"/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "host="+target, string(body))
	allowed, denied := p.Counts()
	assert.EqualValues(t, 1, allowed)
	assert.EqualValues(t, 0, denied)
}
