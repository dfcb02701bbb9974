package local

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// signalGroup signals every process of the group led by pgid. A group that
// is already gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 { // never signal "every process" or init's group
		return nil
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// processStartTime reads field 22 (starttime, in clock ticks since boot) of
// /proc/<pid>/stat; together with the boot id it names a process instance,
// so a recycled pid is never mistaken for a harness.
func processStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// comm (field 2) may contain spaces and parentheses; fields after the
	// last ')' start at field 3.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(data[end+1:]))
	const startTimeIndex = 22 - 3
	if len(fields) <= startTimeIndex {
		return 0, errors.New("malformed /proc stat")
	}
	return strconv.ParseUint(fields[startTimeIndex], 10, 64)
}

func currentBootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// describeProcess records a started harness for a later restart.
func describeProcess(pid int, bootID string) *processRecord {
	start, err := processStartTime(pid)
	if err != nil || bootID == "" {
		return nil
	}
	return &processRecord{PID: pid, StartTime: start, BootID: bootID}
}

// killLeftover stops the process group of a harness a previous daemon
// process left running, if that exact process still exists.
func killLeftover(p *processRecord, bootID string) bool {
	if p == nil || bootID == "" || p.BootID != bootID {
		return false
	}
	start, err := processStartTime(p.PID)
	if err != nil || start != p.StartTime {
		return false
	}
	return signalGroup(p.PID, syscall.SIGKILL) == nil
}
