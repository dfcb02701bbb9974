package sandbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The view: what of the host a sandboxed process sees. It is an allow-list:
// a host path not named here (or in a Spec's ReadOnly, or the harness's own
// program) does not exist inside the sandbox. The masks of Config.Hidden
// are a second layer for the case where a hidden path lies under one of
// these.

// systemDirs are the host's program and library directories, read-only.
// A symlink among them (merged /usr: /bin -> usr/bin) is recreated as a
// symlink.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcView is the part of /etc a program needs, each entry for a reason.
// Everything else of /etc (the daemon's config directory, shadow, sudoers,
// ssh host keys, credstore, /etc/default/*, /etc/security/*, package
// manager credentials in /etc/npmrc or /etc/pip.conf, gitconfig, the
// machine id, …) is absent. /etc/passwd and /etc/group are synthesized
// (etcAccounts), never the host's. A missing entry is skipped.
var etcView = []string{
	// Name resolution: glibc's resolver, Go's and node's read these to
	// resolve a host name (and to know localhost).
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
	// Service and protocol names (getservbyname, getprotobyname): curl,
	// git, python's socket module.
	"/etc/services", "/etc/protocols",
	// CA certificates, public by nature: every TLS client verifies servers
	// with them (Debian: ssl/certs, hashed links into /usr/share and the
	// ca-certificates.crt bundle; Fedora: pki). openssl.cnf is the system
	// OpenSSL configuration (no keys; those are in ssl/private, absent).
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/pki/tls/certs", "/etc/pki/tls/openssl.cnf",
	"/etc/pki/ca-trust/extracted",
	// The dynamic loader's cache and search path: without them a program
	// linked against a library outside the default directories fails.
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	// Time zone (a symlink into /usr/share/zoneinfo, kept a symlink so the
	// zone's name stays readable) and glibc's locale aliases.
	"/etc/localtime", "/etc/timezone", "/etc/locale.alias",
	// Debian's alternatives: /usr/bin/awk, editor, pager, java… are
	// symlinks through here. The directory holds only symlinks into system
	// directories.
	"/etc/alternatives",
	// File type and OS identification tables, public data read by common
	// tools (python's mimetypes, platform; node's os).
	"/etc/mime.types", "/etc/os-release",
	// A symlink to /proc/self/mounts (the sandbox's own), for df and mount.
	"/etc/mtab",
}

// etcAccounts are the account databases, synthesized per process.
var etcAccounts = []string{"/etc/passwd", "/etc/group"}

// The harness's user inside the sandbox. It is never root: bwrap maps it
// onto the daemon's uid (its only mapping), so it owns exactly what the
// daemon owns and, without capabilities, nothing more; see Command.
const (
	harnessUID  = 1000
	harnessGID  = 1000
	harnessUser = "agent"
)

// passwdFile is the /etc/passwd a sandboxed process sees: root, the
// harness's user with its HOME, and nobody (unmapped host uids show as
// 65534 inside a user namespace).
func passwdFile(home string) []byte {
	if strings.ContainsAny(home, ":\n") {
		home = "/"
	}
	return []byte("root:x:0:0:root:/root:/usr/sbin/nologin\n" +
		harnessUser + ":x:1000:1000:sandbox0d harness:" + home + ":/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
}

// groupFile is the /etc/group matching passwdFile.
func groupFile() []byte {
	return []byte("root:x:0:\n" + harnessUser + ":x:1000:\nnogroup:x:65534:\n")
}

// viewEntry is one host path of the view and how it is shown.
type viewEntry struct {
	path string
	// symlink is the target to recreate at path ("" to bind path).
	symlink string
	dir     bool
}

// hostView resolves systemDirs and etcView against this host once (New
// calls it): which exist, which are symlinks to keep, and the directories
// the CA store's links point into when those lie outside the view.
func hostView() []viewEntry {
	var view []viewEntry
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				view = append(view, viewEntry{path: d, symlink: target})
			}
		case fi.IsDir():
			view = append(view, viewEntry{path: d, dir: true})
		}
	}
	etc := append([]string(nil), etcView...)
	etc = append(etc, certLinkDirs(etc)...)
	for _, p := range etc {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // a dangling symlink
		}
		e := viewEntry{path: p}
		if fi.Mode()&os.ModeSymlink != 0 && (underSystemDir(real) || within(real, "/proc")) {
			// Its target is in the view already: keep the link.
			e.symlink, _ = os.Readlink(p)
		} else if st, err := os.Stat(p); err == nil {
			// A file bound at its own path (a symlink elsewhere, such as
			// resolv.conf into /run, shows its target's content).
			e.dir = st.IsDir()
		}
		view = append(view, e)
	}
	return view
}

// certLinkDirs are the directories the CA store's symlinks point into that
// the view does not show already (Fedora's ca-bundle.crt links into
// /etc/pki/ca-trust/extracted/pem; some systems link /etc/ssl/certs into
// /etc/ca-certificates): without them the bundle would dangle.
func certLinkDirs(etc []string) []string {
	var dirs []string
	for _, certs := range []string{"/etc/ssl/certs", "/etc/pki/tls/certs"} {
		entries, err := os.ReadDir(certs)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			real, err := filepath.EvalSymlinks(filepath.Join(certs, e.Name()))
			if err != nil {
				continue
			}
			dir := filepath.Dir(real)
			if underSystemDir(dir) || inAny(dir, etc) || inAny(dir, dirs) {
				continue
			}
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

func underSystemDir(path string) bool { return inAny(path, systemDirs) }

// inAny reports whether path is one of dirs or inside one.
func inAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if within(path, d) {
			return true
		}
	}
	return false
}

// inView reports whether a host path shows inside the sandbox through the
// view (not counting a Spec's ReadOnly or program).
func inView(view []viewEntry, path string) bool {
	for _, e := range view {
		if e.symlink == "" && within(path, e.path) {
			return true
		}
	}
	return false
}

// privateInView lists what the /etc part of the view holds that others may
// not read (a key dropped into ssl/certs by mistake): it is masked like
// the daemon's own files. A harness of a root daemon owns, inside, what
// host root owns (see Command), so the view must hold nothing that only
// its owner may read. The system directories are not walked (150,000
// files on a small host, at every start): they hold what packages
// install, which is world-readable but for the odd directory such as
// polkit's rules.d, owned by its own system user.
func privateInView(view []viewEntry) []string {
	var private []string
	for _, e := range view {
		if e.symlink != "" || underSystemDir(e.path) {
			continue
		}
		_ = filepath.WalkDir(e.path, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil // its target is checked where it lies, if in the view
			}
			fi, err := os.Stat(path)
			if err != nil {
				return nil
			}
			perm := fi.Mode().Perm()
			if fi.IsDir() && perm&0o005 != 0o005 {
				private = append(private, path)
				return fs.SkipDir
			}
			if !fi.IsDir() && perm&0o004 == 0 {
				private = append(private, path)
			}
			return nil
		})
	}
	return private
}
