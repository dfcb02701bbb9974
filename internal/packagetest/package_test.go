package packagetest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/repotest"
)

const (
	version = "1.2.3~test1"
	epoch   = 1767225600 // 2026-01-01 00:00:00 UTC
)

// The files docs/install.md "Packages" promises, beyond the manual's pages.
var promised = map[string]int64{ // path: mode
	"./usr/bin/sandbox0d":                                               0o755,
	"./usr/lib/systemd/system/sandbox0d.service":                        0o644,
	"./usr/lib/sysusers.d/sandbox0d.conf":                               0o644,
	"./etc/sandbox0d/config.yaml":                                       0o640,
	"./usr/lib/sandbox0d/echo-harness.sh":                               0o755,
	"./usr/share/man/man1/sandbox0d.1.gz":                               0o644,
	"./usr/share/man/man1/sandbox0d-deployments-run.1.gz":               0o644,
	"./usr/share/bash-completion/completions/sandbox0d":                 0o644,
	"./usr/share/zsh/vendor-completions/_sandbox0d":                     0o644,
	"./usr/share/fish/vendor_completions.d/sandbox0d.fish":              0o644,
	"./usr/share/doc/sandbox0d/README.md":                               0o644,
	"./usr/share/doc/sandbox0d/docs/install.md":                         0o644,
	"./usr/share/doc/sandbox0d/examples/deployment.json":                0o644,
	"./usr/share/doc/sandbox0d/examples/cluster/sandbox0d-cluster.conf": 0o644,
}

// Two builds of one commit give identical bytes; the tarball holds exactly
// the .deb's files; the files are the promised ones, root's, with the
// commit's time; the binary reports the stamped version.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon twice; skipped in -short")
	}
	t.Parallel()
	repotest.TrackSources(t, "sandbox0d.service", "sandbox0d.sysusers", "packaging/config.yaml", "examples/cluster/sandbox0d-cluster.conf",
		"packaging/scripts/postinst", "packaging/scripts/prerm", "packaging/scripts/postrm")

	// One after the other: on CI's two cores a parallel build gains little
	// and doubles the linkers' memory.
	var debs, tarballs [2]string
	for i := range 2 {
		var err error
		debs[i], tarballs[i], err = repotest.Packages(t.TempDir(), version, epoch)
		require.NoError(t, err)
	}
	assert.Equal(t, "sandbox0d_"+version+"_"+runtime.GOARCH+".deb", filepath.Base(debs[0]))
	assert.Equal(t, "sandbox0d_"+version+"_linux_"+runtime.GOARCH+".tar.gz", filepath.Base(tarballs[0]))
	for _, pair := range [][2]string{{debs[0], debs[1]}, {tarballs[0], tarballs[1]}} {
		a, err := os.ReadFile(pair[0])
		require.NoError(t, err)
		b, err := os.ReadFile(pair[1])
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "two builds of one commit differ: %s and %s", pair[0], pair[1])
	}

	names, members := arMembers(t, debs[0])
	require.Equal(t, []string{"debian-binary", "control.tar.gz", "data.tar.gz"}, names)
	data := tarEntries(t, members["data.tar.gz"])
	tarball, err := os.ReadFile(tarballs[0])
	require.NoError(t, err)
	tarred := tarEntries(t, tarball)

	t.Run("the tarball holds the deb's files", func(t *testing.T) {
		assert.Equal(t, listing(data), listing(tarred))
	})
	t.Run("promised files, root's, at the commit's time", func(t *testing.T) {
		for path, mode := range promised {
			e, ok := data[path]
			if assert.True(t, ok, "the package has no %s", path) {
				assert.Equal(t, mode, e.mode, "%s's mode", path)
			}
		}
		for path, e := range data {
			assert.Equal(t, "root:root 0:0", e.owner, path)
			assert.Equal(t, time.Unix(epoch, 0).UTC(), e.mtime, "%s's time", path)
		}
	})
	t.Run("control", func(t *testing.T) {
		control := tarEntries(t, members["control.tar.gz"])
		assert.Equal(t, "/etc/sandbox0d/config.yaml\n", string(control["./conffiles"].content))
		fields := string(control["./control"].content)
		assert.Contains(t, fields, "\nVersion: "+version+"\n")
		assert.Contains(t, fields, "\nDepends: systemd, bubblewrap, init-system-helpers\n")
		for _, script := range []string{"postinst", "prerm", "postrm"} {
			repo, err := os.ReadFile(filepath.Join(repotest.Root(), "packaging", "scripts", script))
			require.NoError(t, err)
			assert.Equal(t, string(repo), string(control["./"+script].content), script)
			assert.Equal(t, int64(0o755), control["./"+script].mode, script)
		}
	})
	t.Run("the unit differs from the shipped one only in ExecStart", func(t *testing.T) {
		shipped, err := os.ReadFile(filepath.Join(repotest.Root(), "sandbox0d.service"))
		require.NoError(t, err)
		want := strings.Replace(string(shipped), "\nExecStart=/usr/local/bin/sandbox0d serve", "\nExecStart=/usr/bin/sandbox0d serve", 1)
		assert.NotEqual(t, string(shipped), want)
		assert.Equal(t, want, string(data["./usr/lib/systemd/system/sandbox0d.service"].content))
	})
	t.Run("man pages and completions", func(t *testing.T) {
		zr, err := gzip.NewReader(bytes.NewReader(data["./usr/share/man/man1/sandbox0d.1.gz"].content))
		require.NoError(t, err)
		page, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Contains(t, string(page), `.TH "SANDBOX0D" "1" "Jan 2026"`, "the page's date is the commit's month")
		for _, path := range []string{"./usr/share/bash-completion/completions/sandbox0d",
			"./usr/share/zsh/vendor-completions/_sandbox0d", "./usr/share/fish/vendor_completions.d/sandbox0d.fish"} {
			assert.Contains(t, string(data[path].content), "sandbox0d", path)
		}
	})
	t.Run("the binary reports the stamped version", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "sandbox0d")
		require.NoError(t, os.WriteFile(bin, data["./usr/bin/sandbox0d"].content, 0o755))
		out, err := exec.Command(bin, "version").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "sandbox0d "+version+"\n", string(out))
	})
}

// listing is an archive's entries as `ls -l` would compare them.
func listing(entries map[string]entry) []string {
	var out []string
	for name, e := range entries {
		kind := "file"
		if e.dir {
			kind = "dir"
		}
		out = append(out, strings.Join([]string{name, kind, strconv.FormatInt(e.mode, 8), strconv.FormatInt(e.size, 10), e.sha256, e.owner, e.mtime.String()}, " "))
	}
	sort.Strings(out)
	return out
}
