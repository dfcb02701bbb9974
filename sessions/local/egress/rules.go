package egress

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PackageManagerHosts are what allow_package_managers adds to a limited
// policy: the public registries of the common language and OS package
// managers (npm/yarn, PyPI, Go modules, crates.io, RubyGems, Maven Central,
// Debian/Ubuntu/Alpine archives).
var PackageManagerHosts = []string{
	"registry.npmjs.org", "registry.yarnpkg.com",
	"pypi.org", "files.pythonhosted.org",
	"proxy.golang.org", "sum.golang.org",
	"crates.io", "index.crates.io", "static.crates.io",
	"rubygems.org", "index.rubygems.org",
	"repo.maven.apache.org", "repo1.maven.org",
	"deb.debian.org", "security.debian.org",
	"archive.ubuntu.com", "security.ubuntu.com",
	"dl-cdn.alpinelinux.org",
}

// rule is one allowed_hosts entry.
type rule struct {
	name     string     // exact host name, lower case
	suffix   string     // "*.example.com" → ".example.com"
	ip       netip.Addr // an IP literal
	port     int        // 0: any port
	original string
}

// parseRule parses an allowed_hosts entry: a host name, a "*.suffix"
// wildcard or an IP, optionally followed by ":port" ("[v6]:port" for IPv6).
func parseRule(entry string) (rule, error) {
	r := rule{original: entry}
	host := strings.ToLower(strings.TrimSpace(entry))
	if host == "" {
		return r, fmt.Errorf("empty host")
	}
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return r, fmt.Errorf("%q: unclosed [", entry)
		}
		rest := host[end+1:]
		host = host[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return r, fmt.Errorf("%q: junk after ]", entry)
			}
			p, err := parsePort(rest[1:])
			if err != nil {
				return r, fmt.Errorf("%q: %v", entry, err)
			}
			r.port = p
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return r, fmt.Errorf("%q: not an IPv6 address in brackets", entry)
		}
		r.ip = ip
		return r, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil { // a bare IPv6 (or IPv4)
		r.ip = ip.Unmap()
		return r, nil
	}
	if h, p, ok := strings.Cut(host, ":"); ok {
		port, err := parsePort(p)
		if err != nil {
			return r, fmt.Errorf("%q: %v", entry, err)
		}
		host, r.port = h, port
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		r.ip = ip.Unmap()
		return r, nil
	}
	host = strings.TrimSuffix(host, ".")
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if err := checkHostName(rest); err != nil {
			return r, fmt.Errorf("%q: %v", entry, err)
		}
		r.suffix = "." + rest
		return r, nil
	}
	if err := checkHostName(host); err != nil {
		return r, fmt.Errorf("%q: %v", entry, err)
	}
	r.name = host
	return r, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not 1-65535", s)
	}
	return p, nil
}

// checkHostName accepts DNS names: dot-separated labels of letters, digits,
// '-' and '_'.
func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("not a host name")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("not a host name (empty or long label)")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("not a host name (%q)", c)
			}
		}
	}
	return nil
}

// CheckHost validates one allowed_hosts entry.
func CheckHost(entry string) error {
	_, err := parseRule(entry)
	return err
}

// target is a destination as the client sent it.
type target struct {
	host string     // lower case, no trailing dot, no brackets
	ip   netip.Addr // valid when host is an IP literal
	port int
}

// parseTarget splits a CONNECT authority or URL host ("host:port").
func parseTarget(hostport string, defaultPort int) (target, error) {
	var t target
	host, portStr := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.Index(hostport, "]")
		if end < 0 {
			return t, fmt.Errorf("bad host %q", hostport)
		}
		host, portStr = hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":")
	} else if h, p, ok := strings.Cut(hostport, ":"); ok {
		host, portStr = h, p
	}
	t.port = defaultPort
	if portStr != "" {
		p, err := parsePort(portStr)
		if err != nil {
			return t, err
		}
		t.port = p
	}
	if t.port == 0 {
		return t, fmt.Errorf("%q has no port", hostport)
	}
	t.host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(t.host); err == nil {
		t.ip = ip.Unmap()
		t.host = t.ip.String()
	} else if err := checkHostName(t.host); err != nil {
		return t, fmt.Errorf("bad host %q: %v", host, err)
	}
	return t, nil
}

func (r rule) portOK(port int) bool { return r.port == 0 || r.port == port }

// matches reports whether the destination, as sent, is what r allows: IP
// entries match only that IP literal, names only that name (a name is never
// compared with what it resolves to, so allowing 127.0.0.1 does not allow
// localhost).
func (r rule) matches(t target) bool {
	if !r.portOK(t.port) {
		return false
	}
	switch {
	case r.ip.IsValid():
		return t.ip.IsValid() && t.ip == r.ip
	case t.ip.IsValid():
		return false
	case r.suffix != "":
		return strings.HasSuffix(t.host, r.suffix)
	}
	return t.host == r.name
}

// listsIP reports whether an IP entry of the rules names addr on port, the
// only way a loopback, private or link-local address is reachable.
func listsIP(rules []rule, addr netip.Addr, port int) bool {
	for _, r := range rules {
		if r.ip.IsValid() && r.ip == addr && r.portOK(port) {
			return true
		}
	}
	return false
}

// internal reports addresses a network policy refuses unless listed:
// loopback, private (RFC 1918, fc00::/7), link-local (169.254.169.254, the
// cloud metadata address, included; fd00:ec2::254 is in fc00::/7),
// unspecified, multicast, shared (100.64/10, which holds 100.100.100.200)
// and the like, and an IPv6 form (NAT64, 6to4) of any of them.
func internal(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		if v4, ok := embeddedIPv4(a); ok && internal(v4) {
			return true
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT / shared
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF assignments (192.0.0.192: Oracle's metadata)
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, broadcast
	netip.MustParsePrefix("fec0::/10"),     // deprecated site-local
	netip.MustParsePrefix("100::/64"),      // discard-only
}

var (
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	six4  = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 is the IPv4 address a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address reaches.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case six4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}
