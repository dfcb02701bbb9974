package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// etcAllowedNames are the top-level /etc names the view may show: the
// first component of every etcView entry, and the synthesized accounts.
func etcAllowedNames() []string {
	var names []string
	for _, p := range append(slices.Clone(etcView), etcAccounts...) {
		name := strings.SplitN(strings.TrimPrefix(p, "/etc/"), "/", 2)[0]
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// A hostile harness, run as the agent's program the way sessions run it,
// tries every host path that is not on the allow-list: each /etc entry of
// this host that is not allowed, /opt, its own neighbours, a webhook signing
// key next to the config (a file no mask names), the data dir, and what
// /proc says about the sandbox. Nothing is readable, it is not root, and
// /proc/1/cmdline holds no host path but its own program's.
func TestHostileHarnessSeesOnlyTheAllowList(t *testing.T) {
	root := t.TempDir()
	confDir := filepath.Join(root, "etc-sandbox0d")
	require.NoError(t, os.MkdirAll(confDir, 0o755))
	config := filepath.Join(confDir, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("backend: local\n"), 0o640))
	signingKey := filepath.Join(confDir, "webhook-signing.key")
	require.NoError(t, os.WriteFile(signingKey, []byte("whsec_SECRET"), 0o600))
	neighbour := filepath.Join(confDir, "neighbour.txt")
	require.NoError(t, os.WriteFile(neighbour, []byte("neighbour"), 0o644))
	dataDir := filepath.Join(root, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dataDir, "keys"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "keys", "identity.age.txt"), []byte("AGE-SECRET-KEY-1"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "sandbox0d.db"), []byte("bbolt"), 0o600))
	ws := filepath.Join(dataDir, "workspaces", "sesn_hostile")
	require.NoError(t, os.MkdirAll(ws, 0o700))

	// The masks name only the config and the data dir: the signing key is
	// what the deny-list forgot.
	bw := needBwrap(t, Config{Hidden: []string{config, dataDir}})

	hostEtc, err := os.ReadDir("/etc")
	require.NoError(t, err)
	var etcNames []string
	for _, e := range hostEtc {
		etcNames = append(etcNames, e.Name())
	}
	harness := filepath.Join(confDir, "hostile.sh")
	script := `#!/bin/sh
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "READ $name"; else echo "blocked $name"; fi; }
for name in ` + shellWords(etcNames) + `; do
	if [ -e "/etc/$name" ] || [ -L "/etc/$name" ]; then echo "etc-present $name"; fi
done
try shadow cat /etc/shadow
try ssl-private ls /etc/ssl/private
try host-passwd grep -q '^daemon:' /etc/passwd
try opt ls /opt
try config cat ` + config + `
try signing-key cat ` + signingKey + `
try neighbour cat ` + neighbour + `
try list-neighbours sh -c 'ls ` + confDir + ` | grep -qv "^hostile.sh$"'
try data-dir ls ` + dataDir + `/keys
try identity cat ` + dataDir + `/keys/identity.age.txt
try database cat ` + dataDir + `/sandbox0d.db
echo "uid $(id -u) $(id -un) gid $(id -g)"
echo "cmdline $(tr '\0' ' ' < /proc/1/cmdline)"
echo "fds $(ls -l /proc/$$/fd /proc/self/fd | sed -n "s/.* -> //p" | tr "\n" " ")"
echo "passwd $(tr '\n' '|' < /etc/passwd)"
sed 's/^/mountinfo /' /proc/self/mountinfo
`
	require.NoError(t, os.WriteFile(harness, []byte(script), 0o755))

	p, err := bw.Command(Spec{SessionID: "sesn_hostile", Argv: []string{harness}, Workspace: ws,
		Home: filepath.Join(ws, ".home"), Env: []string{"PATH=/usr/bin:/bin"}})
	require.NoError(t, err)
	var out bytes.Buffer
	p.Cmd.Stdout, p.Cmd.Stderr = &out, &out
	require.NoError(t, p.Start())
	require.NoError(t, p.Wait(), out.String())
	text := out.String()

	allowed := etcAllowedNames()
	var present []string
	for _, line := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(line, "etc-present "); ok {
			present = append(present, name)
			assert.Contains(t, allowed, name, "/etc/%s is visible but not on the allow-list", name)
		}
		if name, ok := strings.CutPrefix(line, "READ "); ok {
			t.Errorf("the hostile harness read %s", name)
		}
	}
	assert.Contains(t, present, "passwd")
	assert.Contains(t, present, "resolv.conf")
	for _, name := range []string{"shadow", "ssl-private", "host-passwd", "opt", "config", "signing-key", "neighbour",
		"list-neighbours", "data-dir", "identity", "database"} {
		assert.Contains(t, text, "blocked "+name+"\n")
	}
	assert.Contains(t, text, "uid 1000 agent gid 1000\n", "the harness is never root")
	assert.Contains(t, text, "passwd root:x:0:0:root:/root:/usr/sbin/nologin|agent:x:1000:1000:sandbox0d harness:"+ws+"/.home:/bin/sh|nobody:")

	// pid 1 is bwrap's init: its argv is bwrap's, the options in a
	// descriptor; the harness's own path is the only host path.
	cmdline := lineWith(text, "cmdline ")
	assert.Equal(t, "cmdline "+bw.bwrap+" --args 4 -- "+harness+" ", cmdline)
	// No descriptor of bwrap's (options, passwd, group: memory files)
	// reaches the harness.
	fds := lineWith(text, "fds ")
	assert.Contains(t, fds, "/dev/null")
	assert.NotContains(t, fds, "memfd:")

	// mountinfo names every mount point: the view, /tmp, /run and the
	// workspace (at its host path, which is inside the data dir: that much
	// of the layout is unavoidable). No mask and no file of the config
	// directory but the program itself shows.
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "mountinfo ") {
			continue
		}
		for _, secret := range []string{config, signingKey, neighbour, filepath.Join(dataDir, "keys"), "sandbox0d.db", "/etc/shadow", "/opt"} {
			assert.NotContains(t, line, secret)
		}
	}
}

// The harness's program is visible as a file; its directory is not, and a
// program in the workspace or under /usr needs no binding.
func TestProgramFileNotItsDirectory(t *testing.T) {
	bw := needBwrap(t, Config{})
	dir := t.TempDir()
	prog := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(prog, []byte("#!/bin/sh\nls "+dir+"\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lib.sh"), []byte("x"), 0o644))
	p, err := bw.Command(Spec{Argv: []string{prog}, Workspace: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}})
	require.NoError(t, err)
	var out bytes.Buffer
	p.Cmd.Stdout = &out
	require.NoError(t, p.Start())
	require.NoError(t, p.Wait())
	assert.Equal(t, "harness.sh\n", out.String())
}

// An agent's read-only path under /etc cannot bring the host's accounts or
// root-only files back: passwd is still the synthesized one and the masks
// of the second layer cover the secrets.
func TestReadOnlyEtcKeepsSynthesizedAccountsAndMasks(t *testing.T) {
	bw := needBwrap(t, Config{})
	out, err := run(t, bw, Spec{ReadOnly: []string{"/etc"}},
		`grep -c '^daemon:' /etc/passwd; cat /etc/shadow 2>/dev/null | wc -c; test -r /etc/adduser.conf && echo other-etc-visible`)
	require.NoError(t, err)
	lines := strings.Split(out, "\n")
	require.Len(t, lines, 4, out)
	assert.Equal(t, "0", lines[0], "the host's passwd is back")
	assert.Equal(t, "0", lines[1], "/etc/shadow is readable")
	assert.Equal(t, "other-etc-visible", lines[2], "read_only: [/etc] shows /etc")
}

// A hidden path under a read-only path an agent names is masked.
func TestHiddenUnderReadOnlyIsMasked(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(data, "identity"), []byte("AGE-SECRET"), 0o600))
	key := filepath.Join(dir, "signing.key")
	require.NoError(t, os.WriteFile(key, []byte("whsec_x"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lib.sh"), []byte("lib"), 0o644))
	bw := needBwrap(t, Config{Hidden: []string{data, key}})
	out, err := run(t, bw, Spec{ReadOnly: []string{dir}},
		`cat `+dir+`/lib.sh; echo; ls -A `+data+` | wc -l; cat `+key+` | wc -c`)
	require.NoError(t, err)
	assert.Equal(t, "lib\n0\n0\n", out)
}

func lineWith(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// shellWords quotes names for a shell for-loop.
func shellWords(names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("'" + strings.ReplaceAll(n, "'", `'\''`) + "' ")
	}
	return b.String()
}

// What the /etc part of the view holds that others may not read is masked:
// a root daemon's harness would own it inside.
func TestPrivateFilesInTheViewAreMasked(t *testing.T) {
	// Not under /tmp: the sandbox's private /tmp would cover it.
	dir, err := os.MkdirTemp("/var/tmp", "sandbox0d-view-")
	if err != nil {
		t.Skipf("no /var/tmp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("public"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.key"), []byte("PRIVATE"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "private"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "private", "k"), []byte("PRIVATE"), 0o644))
	view := []viewEntry{{path: dir, dir: true}, {path: "/usr", dir: true}}
	assert.Equal(t, []string{filepath.Join(dir, "private"), filepath.Join(dir, "server.key")}, privateInView(view))

	// End to end: such a directory in the view shows its public files only.
	bw := needBwrap(t, Config{})
	bw.view = append(bw.view, viewEntry{path: dir, dir: true})
	bw.hidden = append(bw.hidden, privateInView(bw.view)...)
	out, err := run(t, bw, Spec{}, `cat `+dir+`/ca.pem; echo; cat `+dir+`/server.key `+dir+`/private/k 2>/dev/null | wc -c`)
	require.NoError(t, err)
	assert.Equal(t, "public\n0\n", out)
}
