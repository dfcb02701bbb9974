package egress

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// The clone proxy serves only its own git: a request without its
// credential is refused before any destination is looked at.
func TestCloneProxyRequiresItsCredential(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c, err := ListenClone(CloneConfig{SessionID: "ses_x", Network: sandbox.Network{AllowedHosts: []string{"127.0.0.1"}, Environment: "env"}})
	require.NoError(t, err)
	defer c.Close()
	proxyURL, err := url.Parse(c.URL())
	require.NoError(t, err)
	password, _ := proxyURL.User.Password()

	get := func(auth string) *http.Response {
		conn, err := net.Dial("tcp", proxyURL.Host)
		require.NoError(t, err)
		defer conn.Close()
		req := "GET " + srv.URL + "/ HTTP/1.1\r\nHost: x\r\n"
		if auth != "" {
			req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n"
		}
		_, err = io.WriteString(conn, req+"\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		_, _ = io.ReadAll(resp.Body)
		return resp
	}
	for _, auth := range []string{"", "sandbox0d:wrong", "other:" + password} {
		resp := get(auth)
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode, auth)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Basic "))
	}
	assert.Zero(t, hits)
	assert.Equal(t, http.StatusOK, get("sandbox0d:"+password).StatusCode)
	assert.Equal(t, 1, hits)
	assert.Empty(t, c.Refusal())
}

// An unrestricted clone policy takes any public name but still refuses an
// internal address it does not list; a limited one takes only its rules.
func TestClonePolicyCheck(t *testing.T) {
	for _, tt := range []struct {
		network sandbox.Network
		url     string
		refused bool
	}{
		{sandbox.Network{}, "https://93.184.216.34/a.git", false},
		{sandbox.Network{}, "https://127.0.0.1/a.git", true},
		{sandbox.Network{AllowedHosts: []string{"127.0.0.1:443"}}, "https://127.0.0.1/a.git", false},
		{sandbox.Network{AllowedHosts: []string{"127.0.0.1:443"}}, "http://127.0.0.1/a.git", true},
		{sandbox.Network{Limited: true, AllowedHosts: []string{"93.184.216.35"}}, "https://93.184.216.34/a.git", true},
		{sandbox.Network{Limited: true, AllowedHosts: []string{"93.184.216.34"}}, "https://93.184.216.34/a.git", false},
		{sandbox.Network{}, "http://[fd00:ec2::254]/latest", true},
	} {
		c, err := ListenClone(CloneConfig{Network: tt.network})
		require.NoError(t, err)
		err = c.Check(t.Context(), tt.url)
		if tt.refused {
			assert.ErrorIs(t, err, ErrRefused, "%+v %s", tt.network, tt.url)
			assert.NotEmpty(t, c.Refusal())
		} else {
			assert.NoError(t, err, "%+v %s", tt.network, tt.url)
		}
		c.Close()
	}
}
