package sandbox

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// killMarked SIGKILLs every process whose environment holds the exact entry
// marker (KEY=VALUE). Best effort: /proc/<pid>/environ is the environment a
// process started with, so one that re-executed itself with a scrubbed
// environment is not found.
func killMarked(marker string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	want := []byte(marker)
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(data, []byte{0}) {
			if bytes.Equal(kv, want) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}
