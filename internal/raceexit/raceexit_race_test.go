//go:build race && unix

package raceexit_test

import (
	"os"
	"strings"
	"testing"

	_ "github.com/sandbox0/sandbox0d/internal/raceexit"
)

// The binary runs re-executed with the short exit sleep, and keeps the
// user's own GORACE options (the .ci/run or a developer may set some).
func TestReexecutedWithShortExitSleep(t *testing.T) {
	t.Logf("GORACE=%q", os.Getenv("GORACE"))
	if !strings.Contains(os.Getenv("GORACE"), "atexit_sleep_ms=") {
		t.Fatalf("GORACE=%q: not re-executed", os.Getenv("GORACE"))
	}
}
