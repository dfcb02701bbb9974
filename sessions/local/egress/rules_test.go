package egress

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

func TestRuleMatching(t *testing.T) {
	tests := []struct {
		entry, dest string
		want        bool
	}{
		{"api.example.com", "api.example.com:443", true},
		{"api.example.com", "API.Example.com.:443", true},
		{"api.example.com", "example.com:443", false},
		{"api.example.com", "evil-api.example.com:443", false},
		{"*.example.com", "a.b.example.com:80", true},
		{"*.example.com", "example.com:443", false},
		{"*.example.com", "badexample.com:443", false},
		{"api.example.com:443", "api.example.com:443", true},
		{"api.example.com:443", "api.example.com:22", false},
		{"127.0.0.1", "127.0.0.1:8080", true},
		{"127.0.0.1", "localhost:8080", false},
		{"localhost", "127.0.0.1:8080", false},
		{"10.0.0.5:5432", "10.0.0.5:5432", true},
		{"10.0.0.5:5432", "10.0.0.5:5433", false},
		{"::1", "[::1]:80", true},
		{"[::1]:80", "[::1]:81", false},
		{"[2001:db8::1]:443", "[2001:db8::1]:443", true},
	}
	for _, tt := range tests {
		r, err := parseRule(tt.entry)
		require.NoError(t, err, tt.entry)
		dest, err := parseTarget(tt.dest, 0)
		require.NoError(t, err, tt.dest)
		assert.Equal(t, tt.want, r.matches(dest), "%s vs %s", tt.entry, tt.dest)
	}
}

func TestRuleParsingRejectsNonHosts(t *testing.T) {
	for _, bad := range []string{"", "http://x.com", "x.com/path", "x.com:0", "x.com:65536", "*.", "a..b", "[::1", "[1.2.3.4]:80", "x y"} {
		assert.Error(t, CheckHost(bad), bad)
	}
}

func TestInternalAddresses(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
		"fd00::1", "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1",
		// cloud metadata: AWS/GCP/Azure, AWS IPv6, Alibaba, Oracle
		"fd00:ec2::254", "100.100.100.200", "192.0.0.192",
		// IPv6 forms of internal IPv4 addresses, "this network", broadcast
		"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:7f00:1::", "0.1.2.3", "255.255.255.255", "::"} {
		assert.True(t, internal(netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1::1", "8.8.8.8", "64:ff9b::808:808", "2002:808:808::"} {
		assert.False(t, internal(netip.MustParseAddr(a)), a)
	}
}

// A listed name that resolves to a private address is refused unless that
// address is listed too (DNS rebinding cannot open the host's network).
func TestNameResolvingToPrivateNeedsTheIPListed(t *testing.T) {
	p, err := New(Config{Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.7")}, nil
	}})
	require.NoError(t, err)
	defer p.Close()
	for _, tt := range []struct {
		hosts []string
		ok    bool
	}{
		{[]string{"db.internal"}, false},
		{[]string{"db.internal", "10.0.0.7"}, true},
		{[]string{"db.internal", "10.0.0.7:80"}, false},
	} {
		pol, err := compile(sandboxNetwork(tt.hosts))
		require.NoError(t, err)
		l := &listener{p: p, pol: pol}
		_, err = l.check(t.Context(), target{host: "db.internal", port: 5432})
		if tt.ok {
			assert.NoError(t, err, tt.hosts)
		} else {
			var d *denial
			assert.ErrorAs(t, err, &d, tt.hosts)
		}
	}
}

func sandboxNetwork(hosts []string) sandbox.Network {
	return sandbox.Network{Limited: true, AllowedHosts: hosts, Environment: "env_test"}
}

// The harness socket of an unrestricted session with projected
// credentials is open: any public destination, but an internal address
// only for a destination that allowed_hosts or a credential's hosts name
// (by name or IP, the operator's words). A limited policy never takes
// the credentials' hosts, and without Proxied the credentials' hosts
// change nothing.
func TestProxiedUnrestrictedPolicy(t *testing.T) {
	p, err := New(Config{Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "public.test":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "localhost":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "rebind.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.7")}, nil
	}})
	require.NoError(t, err)
	defer p.Close()
	proxied := sandbox.Network{Proxied: true, Environment: "env_u", AllowedHosts: []string{"db.internal:5432", "10.9.9.9"},
		CredentialHosts: []string{"svc.internal", "127.0.0.1", "*.corp.test"}}
	for _, tt := range []struct {
		net  sandbox.Network
		dest string
		ok   bool
	}{
		{proxied, "public.test:443", true},
		{proxied, "93.184.216.35:443", true},
		{proxied, "svc.internal:443", true},     // a credential's host
		{proxied, "a.corp.test:8443", true},     // a credential's wildcard
		{proxied, "127.0.0.1:8080", true},       // a credential's IP
		{proxied, "db.internal:5432", true},     // allowed_hosts, by name
		{proxied, "db.internal:5433", false},    // not on that port
		{proxied, "10.9.9.9:22", true},          // allowed_hosts, by IP
		{proxied, "other.internal:443", false},  // named by nobody
		{proxied, "localhost:8080", true},       // on 127.0.0.1, which a credential names as an IP
		{proxied, "127.0.0.2:8080", false},      // loopback nobody named
		{proxied, "rebind.test:80", false},      // a public-looking name on the metadata address
		{proxied, "169.254.169.254:80", false},  // metadata
		{proxied, "[::1]:8080", false},          // IPv6 loopback
		{proxied, "[64:ff9b::a00:7]:80", false}, // NAT64 form of 10.0.0.7
		{sandbox.Network{Limited: true, Proxied: true, AllowedHosts: []string{"public.test"}, CredentialHosts: []string{"svc.internal"}},
			"svc.internal:443", false},
		{sandbox.Network{Limited: true, AllowedHosts: []string{"public.test"}}, "93.184.216.35:443", false},
		{sandbox.Network{CredentialHosts: []string{"svc.internal"}}, "svc.internal:443", false},
	} {
		pol, err := compileHarness(tt.net)
		require.NoError(t, err)
		l := &listener{p: p, pol: pol}
		dest, err := parseTarget(tt.dest, 0)
		require.NoError(t, err)
		_, err = l.check(t.Context(), dest)
		if tt.ok {
			assert.NoError(t, err, tt.dest)
			continue
		}
		var d *denial
		if assert.ErrorAs(t, err, &d, tt.dest) && tt.net.Proxied && !tt.net.Limited {
			assert.Contains(t, d.reason, "a host one of the session's credentials is scoped to", tt.dest)
		}
	}
	_, err = compileHarness(sandbox.Network{Proxied: true, CredentialHosts: []string{"http://x"}})
	assert.ErrorContains(t, err, "credential hosts[0]")
}
