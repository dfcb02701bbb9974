//go:build race

package schedule

// raceEnabled scales down the pure single-goroutine differential tests under
// the race detector (see defaultDiffCases).
const raceEnabled = true
