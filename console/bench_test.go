package console_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sandbox0/sandbox0d/console"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// The deployments page with 100,000 deployments against the JSON list of
// the same page (50 deployments, the first page and one deep in the
// listing): the console reads a page through the same cursor and adds, per
// row, the last run (one indexed read) and the next fire. Built once per
// process, through the service's Create (no fsync), so `go test` without
// -bench never pays for it.

const benchDeployments = 100_000

var benchFixture struct {
	once   sync.Once
	dir    string
	svc    *deployments.Service
	deep   string // a page token 50,000 deployments in
	err    error
	closer func()
}

func benchService(b *testing.B) *deployments.Service {
	b.Helper()
	benchFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "sandbox0d-console-bench-")
		if err != nil {
			benchFixture.err = err
			return
		}
		benchFixture.dir = dir
		st, err := store.Open(filepath.Join(dir, "bench.db"), store.Options{NoSync: true})
		if err != nil {
			benchFixture.err = err
			return
		}
		benchFixture.closer = func() { _ = st.Close(); _ = os.RemoveAll(dir) }
		svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < benchDeployments; i += 8 {
					in, err := deployments.DecodeCreate(fmt.Appendf(nil, `{"name":"nightly-report-%d","agent":"agent_a","environment_id":"env_1",
"initial_events":[{"type":"user.message","content":[{"type":"text","text":"Summarise yesterday's incidents."}]}],
"metadata":{"team":"sre"},"schedule":{"type":"cron","expression":"%d %d * * *","timezone":%q}}`, i, i%60, i%24, zones[i%len(zones)]))
					if err == nil {
						_, err = svc.Create(b.Context(), in)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		benchFixture.err = <-errs
		benchFixture.svc = svc
		page, err := svc.List(b.Context(), deployments.ListQuery{Limit: 100})
		for range 499 { // 50,000 in
			if err != nil {
				break
			}
			page, err = svc.List(b.Context(), deployments.ListQuery{Limit: 100, Page: page.NextPage})
		}
		if err == nil {
			benchFixture.deep = page.NextPage
		} else {
			benchFixture.err = err
		}
	})
	if benchFixture.err != nil {
		b.Fatal(benchFixture.err)
	}
	return benchFixture.svc
}

func BenchmarkDeploymentsPage100k(b *testing.B) {
	svc := benchService(b)
	page := console.New(console.Config{Service: svc, Trusted: func(*http.Request) bool { return true },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	api := httpapi.New(httpapi.Config{Service: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	get := func(b *testing.B, h http.Handler, target string, beta bool) {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Host = "localhost"
		if beta {
			req.Header.Set("anthropic-beta", httpapi.BetaHeader)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", target, w.Code, w.Body.String())
		}
		b.SetBytes(int64(w.Body.Len()))
	}
	// Console pages are console.pageSize (50) deployments: the JSON list
	// is asked for the same 50.
	deep := benchFixture.deep
	b.Run("console/first", func(b *testing.B) {
		for b.Loop() {
			get(b, page, "/console/", false)
		}
	})
	b.Run("json/first", func(b *testing.B) {
		for b.Loop() {
			get(b, api, "/v1/deployments?limit=50", true)
		}
	})
	b.Run("console/deep", func(b *testing.B) {
		for b.Loop() {
			get(b, page, "/console/?page="+deep, false)
		}
	})
	b.Run("json/deep", func(b *testing.B) {
		for b.Loop() {
			get(b, api, "/v1/deployments?limit=50&page="+deep, true)
		}
	})
	b.Run("console/name-filter", func(b *testing.B) {
		for b.Loop() {
			get(b, page, "/console/?name=report-99999", false)
		}
	})
}

func init() {
	// The fixture's directory goes with the process (TestMain exits).
	cleanupFixture = func() {
		if benchFixture.closer != nil {
			benchFixture.closer()
		}
	}
}
