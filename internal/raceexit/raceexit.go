// Package raceexit, imported for its side effect by a test package
// (`import _ ".../internal/raceexit"` in a _test.go file), spares a
// race-enabled test binary the race runtime's exit sleep.
//
// The race runtime (ThreadSanitizer) sleeps atexit_sleep_ms, 1000 by
// default, before a process with goroutines still alive exits, so that a
// race in progress can still be reported. Every race-enabled test binary
// pays it once (so does every race-enabled daemon a test starts and stops
// gracefully): a second per package of `go test -race ./...`. The option
// can only be set through GORACE before the process starts, so under -race
// this package's init re-executes the binary in place (syscall.Exec: same
// pid, same stdio, same arguments) with atexit_sleep_ms=50 added to GORACE,
// unless GORACE already sets it. Races found while tests run are reported
// and fail their test as before; 50 ms is left for one that a goroutine is
// reporting just as the process exits. Without -race it does nothing.
package raceexit
