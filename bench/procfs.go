package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat; it
// is 100 on every Linux this runs on.
const clockTicks = 100

// rssBytes reads VmRSS of a process.
func rssBytes(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// cpuTime reads the user+system CPU time a process has used.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count
	// from after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3 of the full line, utime 14 and stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad cpu fields", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// writeSyscalls reads syscw (write system calls so far) from /proc/<pid>/io.
func writeSyscalls(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no syscw", pid)
}

// activity is a burst of work (CPU or write system calls) by an otherwise
// idle process.
type activity struct {
	began  time.Time
	wall   time.Duration
	cpu    time.Duration
	writes int64
}

// workCounters reads what tells an idle process from a working one.
func workCounters(pid int) (cpu time.Duration, writes int64, err error) {
	if cpu, err = cpuTime(pid); err != nil {
		return 0, 0, err
	}
	writes, err = writeSyscalls(pid)
	return cpu, writes, err
}

// awaitWorkStart waits up to within for an idle process to use CPU or
// issue a write system call; it returns when it did, or false.
func awaitWorkStart(ctx context.Context, pid int, within time.Duration) (time.Time, bool) {
	const tick = 50 * time.Millisecond
	cpu0, w0, err := workCounters(pid)
	if err != nil {
		return time.Time{}, false
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, tick) {
			return time.Time{}, false
		}
		cpu, w, err := workCounters(pid)
		if err != nil {
			return time.Time{}, false
		}
		if cpu > cpu0 || w > w0 {
			return time.Now().Add(-tick / 2), true
		}
	}
	return time.Time{}, false
}

// awaitBurst waits up to startWithin for an idle process to start working,
// then until it has been idle for quiet (bounded by lastAtMost), and
// reports the burst; ok is false when no work started.
func awaitBurst(ctx context.Context, pid int, startWithin, quiet, lastAtMost time.Duration) (a activity, ok bool) {
	cpuBefore, _ := cpuTime(pid)
	began, ok := awaitWorkStart(ctx, pid, startWithin)
	if !ok {
		return a, false
	}
	a.began = began
	cpu0, w0, _ := workCounters(pid)
	cpuStart := min(cpuBefore, cpu0)
	lastWork := time.Now()
	end := time.Now().Add(lastAtMost)
	for time.Since(lastWork) < quiet && time.Now().Before(end) {
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return a, false
		}
		cpu, w, err := workCounters(pid)
		if err != nil {
			return a, false
		}
		if cpu > cpu0 || w > w0 {
			a.writes += w - w0
			cpu0, w0 = cpu, w
			lastWork = time.Now()
		}
	}
	a.wall = lastWork.Sub(a.began)
	a.cpu = cpu0 - cpuStart
	return a, true
}

// selfCPU is the harness process's own user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
