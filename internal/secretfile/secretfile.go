// Package secretfile warns about secret files other users can read: the
// age identity, vault files, API key files, webhook signing keys, the
// upstream key and the TLS key all open something for whoever reads them.
package secretfile

import (
	"io/fs"
	"log/slog"
	"os"
)

// Exposed reports whether path is readable or writable by group or others
// (following a symlink to the file it names), with its mode. A file that
// cannot be stat'ed is not reported: reading it fails with its own error.
func Exposed(path string) (fs.FileMode, bool) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return info.Mode().Perm(), info.Mode().Perm()&0o077 != 0
}

// WarnIfExposed logs a WARN naming the config key when path is readable or
// writable by group or others, with the fix.
func WarnIfExposed(log *slog.Logger, key, path string) bool {
	if path == "" {
		return false
	}
	mode, exposed := Exposed(path)
	if exposed {
		log.Warn("secret file is readable or writable by group or others; restrict it with chmod 600",
			"key", key, "path", path, "mode", mode.String())
	}
	return exposed
}
