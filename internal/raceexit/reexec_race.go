//go:build race && unix

package raceexit

import (
	"os"
	"strings"
	"syscall"
)

// sleepOption is added to GORACE (see the package comment).
const sleepOption = "atexit_sleep_ms=50"

func init() {
	gorace := os.Getenv("GORACE")
	if strings.Contains(gorace, "atexit_sleep_ms") {
		return // set by the user, or by the exec below
	}
	exe, err := os.Executable()
	if err != nil {
		return // keep the default sleep
	}
	env := []string{"GORACE=" + strings.TrimSpace(gorace+" "+sleepOption)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure: then carry on as is
}
