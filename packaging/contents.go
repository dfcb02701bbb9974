package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2/files"
)

// contents is every file the package installs, where and with which mode.
// The tarball holds the same list (write.go).
func (s staged) contents(binary string) (files.Contents, error) {
	var c files.Contents
	add := func(src, dst string, mode os.FileMode) {
		c = append(c, &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}})
	}
	repo := func(p string) string { return filepath.Join(s.repo, p) }
	stage := func(p string) string { return filepath.Join(s.dir, p) }

	add(binary, "/usr/bin/sandbox0d", 0o755)
	add(stage("sandbox0d.service"), "/usr/lib/systemd/system/sandbox0d.service", 0o644)
	add(repo("sandbox0d.sysusers"), "/usr/lib/sysusers.d/sandbox0d.conf", 0o644)
	// The configuration: a conffile (dpkg keeps the admin's edits on upgrade
	// and asks when both changed), readable by the service's group, which
	// postinst sets once the user exists.
	c = append(c, &files.Content{Source: filepath.Join(s.repo, "packaging", "config.yaml"), Destination: "/etc/sandbox0d/config.yaml",
		Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o640}})
	// The example harness the packaged config's agent_echo runs.
	add(repo("examples/echo-harness.sh"), "/usr/lib/sandbox0d/echo-harness.sh", 0o755)

	add(stage("completion.bash"), "/usr/share/bash-completion/completions/sandbox0d", 0o644)
	add(stage("completion.zsh"), "/usr/share/zsh/vendor-completions/_sandbox0d", 0o644)
	add(stage("completion.fish"), "/usr/share/fish/vendor_completions.d/sandbox0d.fish", 0o644)
	pages, err := filepath.Glob(stage("man1/*.1.gz"))
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		add(p, "/usr/share/man/man1/"+filepath.Base(p), 0o644)
	}

	// The manual as it is in the checkout (the README's links into docs/
	// still work) and the tour's example deployment.
	const doc = "/usr/share/doc/sandbox0d/"
	add(repo("README.md"), doc+"README.md", 0o644)
	add(repo("examples/deployment.json"), doc+"examples/deployment.json", 0o644)
	// The systemd drop-in of a cluster node (docs/cluster.md).
	add(repo("examples/cluster/sandbox0d-cluster.conf"), doc+"examples/cluster/sandbox0d-cluster.conf", 0o644)
	err = filepath.WalkDir(repo("docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		rel, err := filepath.Rel(s.repo, p)
		if err == nil {
			add(p, doc+filepath.ToSlash(rel), 0o644)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(c, func(i, j int) bool { return c[i].Destination < c[j].Destination })
	return c, nil
}
