package egress

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkProjection compares one HTTPS request through the proxy to a
// host with a scoped credential (TLS terminated, the header and body
// rewritten, TLS again upstream) with the same request to a host without
// one (a CONNECT tunnel), on a kept-alive connection and on a new
// connection per request.
func BenchmarkProjection(b *testing.B) {
	rig := newProjRig(b)
	handler := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}
	scoped := tlsServer(b, rig.upstream, "scoped.test", handler)
	other := tlsServer(b, rig.upstream, "other.test", handler)
	body := `{"model":"m","messages":[{"role":"user","content":"hello"}],"token":"` + rig.env["BODY_TOKEN"] + `"}`
	for _, c := range []struct{ name, url string }{
		{"tunnel", "https://other.test:" + port(other) + "/v1/messages"},
		{"projected", "https://scoped.test:" + port(scoped) + "/v1/messages"},
	} {
		for _, keep := range []bool{true, false} {
			name := c.name + "/keepalive"
			if !keep {
				name = c.name + "/newconn"
			}
			b.Run(name, func(b *testing.B) {
				client := rig.client()
				client.Transport.(*http.Transport).DisableKeepAlives = !keep
				for b.Loop() {
					req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+rig.env["HDR_TOKEN"])
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatal(resp.Status)
					}
				}
			})
		}
	}
}
