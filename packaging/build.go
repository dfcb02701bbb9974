package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	repo, out, version, arch string
}

// versionVar is where `sandbox0d version` reads the stamped version from.
const versionVar = "github.com/sandbox0/sandbox0d/cli.Version"

// build stages the package's files and writes the .deb and the tarball; it
// returns their paths.
func build(o options) ([]string, error) {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(repo, "sandbox0d.service")); err != nil {
		return nil, fmt.Errorf("-repo %s is not a sandbox0d checkout (no sandbox0d.service): %w", o.repo, err)
	}
	mtime, err := sourceDate(repo)
	if err != nil {
		return nil, err
	}
	version := o.version
	if version == "" {
		if version, err = gitVersion(repo, mtime); err != nil {
			return nil, err
		}
	}
	if version == "" || version[0] < '0' || version[0] > '9' || strings.ContainsAny(version, " _/") {
		return nil, fmt.Errorf("-version %q: a Debian version starts with a digit and has no spaces, '_' or '/' (e.g. 1.2.0 or 1.2.0~rc1)", version)
	}
	stage, err := os.MkdirTemp("", "sandbox0d-packaging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)

	s := staged{dir: stage, repo: repo}
	binary := filepath.Join(stage, "sandbox0d")
	if err := goBuild(repo, binary, o.arch, version); err != nil {
		return nil, err
	}
	// Man pages and completions come from the binary's own command tree; a
	// binary for another architecture cannot run here, so a host one makes them.
	host := binary
	if o.arch != runtime.GOARCH {
		host = filepath.Join(stage, "host", "sandbox0d")
		if err := goBuild(repo, host, runtime.GOARCH, version); err != nil {
			return nil, err
		}
	}
	if err := s.manPages(host, mtime); err != nil {
		return nil, err
	}
	if err := s.completions(host); err != nil {
		return nil, err
	}
	if err := s.unit(); err != nil {
		return nil, err
	}
	contents, err := s.contents(binary)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	return write(repo, contents, o.out, version, o.arch, mtime)
}

// sourceDate is the time every file in the packages carries:
// SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)
// or else the checked-out commit's time.
func sourceDate(repo string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	out, err := git(repo, "log", "-1", "--format=%ct")
	if err != nil {
		return time.Time{}, fmt.Errorf("the files' time: set SOURCE_DATE_EPOCH or build from a git checkout: %w", err)
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git log -1 --format=%%ct said %q", out)
	}
	return time.Unix(n, 0).UTC(), nil
}

// gitVersion is 0.0.0~gitYYYYMMDD.COMMIT (+dirty with uncommitted
// changes): it sorts before any release (the ~), and between two commits of
// the same day only by chance, so a release sets -version.
func gitVersion(repo string, mtime time.Time) (string, error) {
	commit, err := git(repo, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "", fmt.Errorf("no -version given and no commit to derive one from: %w", err)
	}
	version := "0.0.0~git" + mtime.Format("20060102") + "." + commit
	// Uncommitted changes to tracked files: the commit does not describe
	// what is built, and the version says so.
	if changed, err := git(repo, "status", "--porcelain", "--untracked-files=no"); err == nil && changed != "" {
		version += "+dirty"
	}
	return version, nil
}

func git(repo string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// goBuild builds the daemon statically (it runs on any Linux of the
// architecture) and reproducibly: no paths of this machine, no VCS stamp.
func goBuild(repo, out, arch, version string) error {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X "+versionVar+"="+version, "-o", out, ".")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// staged is the directory generated files are written to before packaging.
type staged struct {
	dir, repo string
}

// manPages writes `sandbox0d docs man` gzipped as Debian wants them, with
// no file name or time in the gzip header; the pages' date is mtime's
// month (cobra reads SOURCE_DATE_EPOCH).
func (s staged) manPages(binary string, mtime time.Time) error {
	raw := filepath.Join(s.dir, "man-raw")
	cmd := exec.Command(binary, "docs", "man", "-o", raw)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(mtime.Unix(), 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sandbox0d docs man: %w\n%s", err, out)
	}
	pages, err := filepath.Glob(filepath.Join(raw, "*.1"))
	if err != nil || len(pages) == 0 {
		return fmt.Errorf("sandbox0d docs man wrote no section-1 pages into %s", raw)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "man1"), 0o755); err != nil {
		return err
	}
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.dir, "man1", filepath.Base(page)+".gz"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// completions writes `sandbox0d completion SHELL` for the shells Debian
// has vendor completion directories for.
func (s staged) completions(binary string) error {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, err := exec.Command(binary, "completion", sh).Output()
		if err != nil || len(out) == 0 {
			return fmt.Errorf("sandbox0d completion %s: %v", sh, err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, "completion."+sh), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// unit is the shipped sandbox0d.service with ExecStart on the packaged
// binary (/usr/bin, where the package puts it; the manual's install from
// source uses /usr/local/bin). Nothing else changes.
func (s staged) unit() error {
	data, err := os.ReadFile(filepath.Join(s.repo, "sandbox0d.service"))
	if err != nil {
		return err
	}
	const from, to = "\nExecStart=/usr/local/bin/sandbox0d ", "\nExecStart=/usr/bin/sandbox0d "
	if bytes.Count(data, []byte(from)) != 1 {
		return fmt.Errorf("sandbox0d.service: want exactly one line starting %q to point at /usr/bin", strings.TrimSpace(from))
	}
	return os.WriteFile(filepath.Join(s.dir, "sandbox0d.service"), bytes.Replace(data, []byte(from), []byte(to), 1), 0o644)
}
