// Package quickstarttest holds one test: the README's front door run as a
// newcomer would, from the blocks README.md and docs/api.md mark with a
// "<!-- quickstart: NAME -->" comment. It builds the daemon with the README's
// go build line, serves the example config, runs the tour (CLI and curl) and
// the SDK examples (Go, and TypeScript where node and the SDK are installed)
// against it, and checks what they print against the output the README shows.
// A change that breaks the front door fails it.
//
// It is a package of its own so that `go test ./...` runs it alongside the
// other packages.
package quickstarttest
