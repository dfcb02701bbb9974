//go:build race

package webhooks

// raceEnabled: the race detector multiplies the CPU of bulk appends by ~10,
// so the large-backlog test uses a smaller backlog under it.
const raceEnabled = true
