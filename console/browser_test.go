package console_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// One headless Chromium serves every browser test of the package: each
// test gets its own browser context (its own cookies, like a private
// window) in it, which costs a tab, not a browser start.

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
	path   string
}

// cleanupFixture removes the benchmark's fixture (bench_test.go).
var cleanupFixture func()

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	if cleanupFixture != nil {
		cleanupFixture()
	}
	os.Exit(code)
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab returns a fresh browser context, skipping the test only when no
// browser is installed (.ci/run installs Debian's chromium).
func tab(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		browser.path = chromiumPath()
		if browser.path == "" {
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(browser.path),
			chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
			chromedp.Flag("headless", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.WindowSize(1280, 900),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		browser.err = chromedp.Do(ctx) // starts the browser
		browser.ctx = ctx
		browser.cancel = func() { cancelCtx(); cancelAlloc() }
	})
	if browser.path == "" {
		t.Skip("no Chromium on this machine (apt-get install chromium); the console's browser tests need one")
	}
	require.NoError(t, browser.err, "starting %s", browser.path)
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	return ctx
}

// screenshot saves a full-page PNG under docs/console/ when
// SANDBOX0D_CONSOLE_SCREENSHOTS is set (normal runs leave the committed
// ones alone).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SANDBOX0D_CONSOLE_SCREENSHOTS") == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := filepath.Join("..", "docs", "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// text is the visible text of the first element matching sel (read by
// script: node ids of a page a form just replaced are stale).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("(document.querySelector("+string(q)+") || {innerText: ''}).innerText"))
	require.NoError(t, err, "text of %s", sel)
	return s
}

// waitFor polls a JavaScript condition until it holds. It survives the
// navigation a form submission causes (an evaluation cut by it is retried).
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-tick.C:
		case <-deadline:
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			t.Fatalf("waiting for %s: not true after 20 s (last error: %v); the page says:\n%s", cond, last, body)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", cond, ctx.Err())
		}
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, "evaluating %s", expr)
	return v
}
