package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// profileCapture is a CPU profile being taken from a daemon over its admin
// socket (the daemon serves /admin/debug/pprof/ only with
// SANDBOX0D_DEBUG_PPROF=true, which -profile sets).
type profileCapture struct {
	path string
	done chan error
}

// pprofEnv is the daemon setting -profile adds.
func pprofEnv(o options, env map[string]string) map[string]string {
	if o.profile == "" {
		return env
	}
	if env == nil {
		env = map[string]string{}
	}
	env["SANDBOX0D_DEBUG_PPROF"] = "true"
	return env
}

// startProfile starts a CPU profile of d seconds (rounded up to whole
// seconds, as pprof takes them) written to path.
func (p *daemonProc) startProfile(ctx context.Context, d time.Duration, path string) *profileCapture {
	return p.startProfileOf(ctx, "profile", d, path)
}

// startProfileOf takes a profile of kind (profile: CPU; allocs: the
// allocations made during d) over d.
func (p *daemonProc) startProfileOf(ctx context.Context, kind string, d time.Duration, path string) *profileCapture {
	pc := &profileCapture{path: path, done: make(chan error, 1)}
	secs := int((d + time.Second - 1) / time.Second)
	go func() {
		pc.done <- func() error {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				fmt.Sprintf("http://sandbox0d/admin/debug/pprof/%s?seconds=%d", kind, secs), nil)
			if err != nil {
				return err
			}
			resp, err := p.admin.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
				return fmt.Errorf("profile: %d %s (does this daemon serve debug.pprof?)", resp.StatusCode, body)
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return pc
}

func (pc *profileCapture) wait() error { return <-pc.done }

// startSelfProfile starts a CPU profile of this (harness) process written to
// path and returns the function that stops it. A failure to start is
// reported on stderr and leaves nothing to stop.
func startSelfProfile(path string) (stop func()) {
	var f *os.File
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		f, err = os.Create(path)
	}
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness profile: %v\n", err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
