package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// info is the package's metadata and maintainer scripts.
func info(contents files.Contents, repo, version, arch string, mtime time.Time) *nfpm.Info {
	script := func(name string) string { return filepath.Join(repo, "packaging", "scripts", name) }
	return nfpm.WithDefaults(&nfpm.Info{
		Name:     "sandbox0d",
		Arch:     arch,
		Platform: "linux",
		Version:  version,
		// The version is Debian's, as given: no semver rewriting.
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "sandbox0d maintainers <sandbox0d@users.noreply.github.com>",
		Homepage:      "https://github.com/sandbox0/sandbox0d",
		Description: "Managed Agents deployments daemon\n" +
			"Runs stored, scheduled agent-run definitions (deployments) with the wire API of the\n" +
			"official Anthropic SDKs; local sessions run confined by bubblewrap.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			// systemd-sysusers and the unit; bubblewrap, which the default
			// local.sandbox: auto needs to start; deb-systemd-helper.
			Depends:    []string{"systemd", "bubblewrap", "init-system-helpers"},
			Recommends: []string{"ca-certificates", "git"},
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: script("postinst"),
				PreRemove:   script("prerm"),
				PostRemove:  script("postrm"),
			},
		},
	})
}

// write packages contents as a .deb and as a tarball of the same files
// (dpkg-deb -c and tar -tzvf list the same paths, modes and sizes).
func write(repo string, contents files.Contents, out, version, arch string, mtime time.Time) ([]string, error) {
	debPath := filepath.Join(out, fmt.Sprintf("sandbox0d_%s_%s.deb", version, arch))
	var debBuf bytes.Buffer
	if err := deb.Default.Package(info(contents, repo, version, arch, mtime), &debBuf); err != nil {
		return nil, fmt.Errorf("building %s: %w", debPath, err)
	}
	// The same preparation the deb packager does (parent directories,
	// defaults), for the tarball.
	forTar := info(contents, repo, version, arch, mtime)
	if err := nfpm.PrepareForPackager(forTar, "deb"); err != nil {
		return nil, err
	}
	tarPath := filepath.Join(out, fmt.Sprintf("sandbox0d_%s_linux_%s.tar.gz", version, arch))
	var tarBuf bytes.Buffer
	if err := tarball(&tarBuf, forTar.Contents, mtime); err != nil {
		return nil, fmt.Errorf("building %s: %w", tarPath, err)
	}
	for path, data := range map[string][]byte{debPath: debBuf.Bytes(), tarPath: tarBuf.Bytes()} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
	}
	return []string{debPath, tarPath}, nil
}

// tarball writes the prepared contents (files and the directories nfpm
// adds for them) as a gzipped tar relative to /, owned by root, with
// mtime on every entry: tar -C / -xzf places what dpkg -i would.
func tarball(w io.Writer, prepared files.Contents, mtime time.Time) error {
	entries := append(files.Contents(nil), prepared...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Destination < entries[j].Destination })
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, c := range entries {
		h := &tar.Header{
			Name: "." + c.Destination, Mode: int64(c.Mode() & 0o7777), ModTime: mtime,
			Uname: "root", Gname: "root", Format: tar.FormatGNU,
		}
		switch c.Type {
		case files.TypeDir, files.TypeImplicitDir:
			h.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(c.Source)
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
