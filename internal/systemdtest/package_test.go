package systemdtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/repotest"
)

const (
	pkgDir = "/root/packages" // the built packages, inside the container
	// The two versions: an install, then an upgrade.
	pkgV1, pkgV2 = "1.0.0~systemdtest", "1.0.1~systemdtest"
	pkgEpoch     = 1767225600 // 2026-01-01 00:00:00 UTC
)

// The Debian package under a real systemd 252, as docs/install.md
// "Packages" says: dpkg -i leaves the service enabled and running with a
// fresh identity credential, a local session through the installed unit
// (the CLI, as root on the default socket) ends with end_turn in
// bubblewrap, the binary reports the stamped version, an edited conffile
// survives a reinstall and an upgrade (which restarts the service on the
// new binary and keeps the data), a purge leaves the identity and the
// data behind, and then the tarball, installed with docs/install.md's
// block, serves a session too.
func TestDebianPackageUnderSystemd(t *testing.T) {
	t.Parallel()
	rootfs := requirements(t, repo)
	repotest.TrackSources(t, "sandbox0d.service", "sandbox0d.sysusers", "packaging/config.yaml",
		"packaging/scripts/postinst", "packaging/scripts/prerm", "packaging/scripts/postrm", "examples/deployment.json")
	began := time.Now()
	phase := func(what string) { t.Logf("%s done at %.1f s", what, time.Since(began).Seconds()) }

	// Both versions build, one after the other (two cores), while the
	// container boots.
	out := t.TempDir()
	type built struct {
		debs    [2]string // inside the container
		tarball string    // the second version's, inside the container
		err     error
	}
	builds := make(chan built, 1)
	go func() {
		var b built
		for i, v := range []string{pkgV1, pkgV2} {
			var deb, tarball string
			if deb, tarball, b.err = repotest.Packages(out, v, pkgEpoch); b.err != nil {
				break
			}
			b.debs[i] = filepath.Join(pkgDir, filepath.Base(deb))
			b.tarball = filepath.Join(pkgDir, filepath.Base(tarball))
		}
		builds <- b
	}()
	c := boot(t, rootfs, "--bind-ro="+out+":"+pkgDir)
	phase("boot")
	b := <-builds
	require.NoError(t, b.err)
	v1, v2, tarball := b.debs[0], b.debs[1], b.tarball
	phase("build")

	t.Logf("dpkg -i %s:\n%s", v1, c.run(2*time.Minute, "dpkg", "-i", v1))
	phase("dpkg -i")
	require.Equal(t, "active", strings.TrimSpace(c.run(30*time.Second, "systemctl", "is-active", "sandbox0d")),
		"postinst starts the service")
	require.Equal(t, "enabled", strings.TrimSpace(c.run(30*time.Second, "systemctl", "is-enabled", "sandbox0d")),
		"postinst enables the service, as deb-systemd-helper does")
	assert.Equal(t, "sandbox0d "+pkgV1+"\n", c.run(30*time.Second, "sandbox0d", "version"))
	// The identity: root's, 0600, handed over as a credential; the config
	// readable by the service's group.
	assert.Equal(t, "600 root root\n", c.run(30*time.Second, "stat", "-c", "%a %U %G", "/etc/sandbox0d/identity.age.txt"))
	assert.Equal(t, "600 root root\n", c.run(30*time.Second, "stat", "-c", "%a %U %G", "/etc/sandbox0d/upstream.key"))
	assert.Equal(t, "640 root sandbox0d\n", c.run(30*time.Second, "stat", "-c", "%a %U %G", "/etc/sandbox0d/config.yaml"))
	identity := c.run(30*time.Second, "sha256sum", "/etc/sandbox0d/identity.age.txt")
	confined(t, c)

	// The README's tour with the packaged example, from a root shell.
	created := c.run(30*time.Second, "sandbox0d", "deployments", "create", "-f", "/usr/share/doc/sandbox0d/examples/deployment.json", "--json")
	var d struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(created), &d), created)
	runTurn(t, c, d.ID)
	phase("first session")

	// The admin edits the conffile; dpkg keeps the edit on a reinstall and
	// an upgrade (the packaged file did not change, so it does not ask).
	c.run(30*time.Second, "sed", "-i", "s/^  max_concurrent_sessions: 4$/  max_concurrent_sessions: 3 # edited/", "/etc/sandbox0d/config.yaml")
	edited := c.run(30*time.Second, "cat", "/etc/sandbox0d/config.yaml")
	require.Contains(t, edited, "max_concurrent_sessions: 3 # edited")
	c.run(2*time.Minute, "dpkg", "-i", v1)
	assert.Equal(t, edited, c.run(30*time.Second, "cat", "/etc/sandbox0d/config.yaml"), "a reinstall keeps the edited conffile")
	pid := mainPID(t, c)
	t.Logf("dpkg -i %s (the upgrade):\n%s", v2, c.run(2*time.Minute, "dpkg", "-i", v2))
	phase("reinstall and upgrade")
	assert.Equal(t, edited, c.run(30*time.Second, "cat", "/etc/sandbox0d/config.yaml"), "an upgrade keeps the edited conffile")
	assert.Equal(t, "640 root sandbox0d\n", c.run(30*time.Second, "stat", "-c", "%a %U %G", "/etc/sandbox0d/config.yaml"))
	assert.Equal(t, "sandbox0d "+pkgV2+"\n", c.run(30*time.Second, "sandbox0d", "version"))
	assert.Equal(t, identity, c.run(30*time.Second, "sha256sum", "/etc/sandbox0d/identity.age.txt"), "the identity is never replaced")
	require.Equal(t, "active", strings.TrimSpace(c.run(30*time.Second, "systemctl", "is-active", "sandbox0d")))
	assert.NotEqual(t, pid, mainPID(t, c), "the upgrade restarts the service on the new binary")
	// The data survived: the deployment is still there and runs again.
	assert.Contains(t, c.run(30*time.Second, "sandbox0d", "deployments", "get", d.ID), d.ID)
	runTurn(t, c, d.ID)
	phase("second session")

	c.run(2*time.Minute, "dpkg", "--purge", "sandbox0d")
	state, _ := c.output(30*time.Second, "systemctl", "is-active", "sandbox0d")
	assert.NotEqual(t, "active", strings.TrimSpace(state), "prerm stops the service")
	for _, gone := range []string{"/usr/bin/sandbox0d", "/etc/sandbox0d/config.yaml", "/usr/lib/systemd/system/sandbox0d.service"} {
		_, err := c.output(30*time.Second, "test", "-e", gone)
		assert.Error(t, err, "%s is left after a purge", gone)
	}
	for _, kept := range []string{"/etc/sandbox0d/identity.age.txt", "/var/lib/sandbox0d/sandbox0d.db"} {
		_, err := c.output(30*time.Second, "test", "-e", kept)
		assert.NoError(t, err, "a purge must leave %s (the identity opens the database's secrets)", kept)
	}

	// On a clean system again (the user stays, as sysusers users do), the
	// tarball installed with docs/install.md's block serves a session too.
	c.run(30*time.Second, "rm", "-rf", "/etc/sandbox0d", "/var/lib/sandbox0d")
	c.run(2*time.Minute, "bash", "-euo", "pipefail", "-c", tarballInstall(t, tarball))
	phase("tarball install")
	assert.Equal(t, "sandbox0d "+pkgV2+"\n", c.run(30*time.Second, "sandbox0d", "version"))
	confined(t, c)
	created = c.run(30*time.Second, "sandbox0d", "deployments", "create", "-f", "/usr/share/doc/sandbox0d/examples/deployment.json", "--json")
	require.NoError(t, json.Unmarshal([]byte(created), &d), created)
	runTurn(t, c, d.ID)
}

// tarballInstall is docs/install.md's install from the tarball, for the
// tarball at path (inside the container).
func tarballInstall(t *testing.T, path string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repo, installDoc))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```sh\ntar -C / --no-overwrite-dir -xzf (\\S+)\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "%s has no sh block starting with the tarball's extraction (tar -C / --no-overwrite-dir -xzf FILE)", installDoc)
	return "tar -C / --no-overwrite-dir -xzf " + path + "\n" + string(m[2])
}

// runTurn runs the deployment and follows its session, as the README's
// tour does, and checks the turn ends with end_turn.
func runTurn(t *testing.T, c *container, id string) {
	t.Helper()
	out := c.run(2*time.Minute, "sandbox0d", "deployments", "run", id, "--follow")
	assert.Contains(t, out, "agent.message  echo-harness done")
	assert.Regexp(t, regexp.MustCompile(`session\.status_idle  \(end_turn\)\n\z`), out)
}

// confined checks the installed service runs its sessions in bubblewrap.
func confined(t *testing.T, c *container) {
	t.Helper()
	out := c.run(30*time.Second, "curl", "-sS", "--unix-socket", socket, "http://localhost/readyz")
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &body), out)
	assert.Equal(t, "OK", body.Status, out)
	assert.Equal(t, "bubblewrap", body.Checks["sandbox"], out)
}

func mainPID(t *testing.T, c *container) string {
	t.Helper()
	return strings.TrimSpace(c.run(30*time.Second, "systemctl", "show", "-p", "MainPID", "--value", "sandbox0d"))
}
