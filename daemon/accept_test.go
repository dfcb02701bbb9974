package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// emfileListener fails its first accepts as a process at its open-file
// limit does, then accepts for real.
type emfileListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// An API listener whose accepts fail with EMFILE logs it at WARN (once per
// interval, not once per failure), keeps retrying, and serves as soon as
// accepting works again.
func TestAcceptFailuresAreLoggedAtWarnAndServingResumes(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	real, err := net.Listen("unix", sock)
	require.NoError(t, err)
	failing := &emfileListener{Listener: real}
	failing.failures.Store(8) // backoffs of 5 ms doubling: about 1.3 s in all
	logs := &syncBuffer{}
	l := daemon.LimitListener(failing, slog.New(slog.NewTextHandler(logs, nil)), "api socket", 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	go func() { _ = srv.Serve(l) }()
	defer srv.Shutdown(context.Background())

	resp, err := socketClient(sock).Get("http://sandbox0d/livez")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "accepting a connection failed"), out)
	assert.Contains(t, out, "level=WARN")
	assert.Contains(t, out, "too many open files")
	assert.Contains(t, out, "RLIMIT_NOFILE")
}
