package console

import (
	"net"
	"net/http"
	"strings"
)

// checkHost refuses a request whose Host header names a host the console
// was not told about. A DNS-rebinding page (evil.example resolving to
// 127.0.0.1) reaches the daemon with its own name in Host, so the browser
// treats the console as evil.example's and would let its script read the
// pages; answering only to localhost, IP literals and configured names
// closes that. IP literals are safe: rebinding needs a name.
func (c *Console) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostName(r.Host)
		if hostAllowed(host, c.cfg.AllowedHosts) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = w.Write([]byte("the console does not answer to the host name " + quoteHost(host) +
			" (a guard against DNS rebinding): use localhost or an IP address, or add the name to console.allowed_hosts in the config and reload (SIGHUP)\n"))
	})
}

func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

func hostAllowed(host string, allowed func() []string) bool {
	switch {
	case host == "":
		return false
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return true
	case net.ParseIP(host) != nil:
		return true
	case allowed == nil:
		return false
	}
	for _, h := range allowed() {
		if strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), ".")) == host {
			return true
		}
	}
	return false
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return "\"" + strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, h) + "\""
}
