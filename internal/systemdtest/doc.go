// Package systemdtest holds one test: the daemon installed as docs/install.md's
// "Running under systemd" says, started by a real systemd manager from the
// shipped unit (sandbox0d.service), with local sessions that try to reach
// the daemon's secrets and a Claude Code turn. systemd boots in a
// systemd-nspawn container of a Debian bookworm root file system that
// .ci/systemd-rootfs builds once and caches; the test skips, saying why,
// where it cannot run (not root, no systemd-nspawn, no cached root file
// system and no debootstrap to build one). CI runs it on every run.
//
// It is a package of its own so that `go test ./...` runs it alongside the
// other packages.
package systemdtest
