package systemdtest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sandbox0/sandbox0d/internal/repotest"
)

const (
	clusterHostileHarness = "/usr/local/lib/sandbox0d-test/cluster-hostile.sh"
	clusterDoc            = "docs/cluster.md"
	// The drop-in docs/cluster.md shows and the package ships.
	clusterDropIn = "examples/cluster/sandbox0d-cluster.conf"
	clusterSrc    = "/root/cluster-src" // the test's files, inside the containers
	// Debian's etcd-server package: its binary and unit, run in the container.
	debianEtcd     = "/usr/bin/etcd"
	debianEtcdUnit = "/lib/systemd/system/etcd.service"
)

// clusterBlocks are docs/cluster.md's blocks marked "<!-- cluster: NAME -->"
// (a parenthesis after the name is for the reader), by name.
func clusterBlocks(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repo, clusterDoc))
	require.NoError(t, err)
	out := map[string]string{}
	re := regexp.MustCompile("(?s)<!-- cluster: ([^(\n>]*?)(?: \\([^)]*\\))? -->\n```\\w*\n(.*?)```\n")
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		require.NotContains(t, out, m[1], "%s marks two blocks %q", clusterDoc, m[1])
		out[m[1]] = m[2]
	}
	for _, name := range []string{"etcd", clusterDropIn} {
		require.Contains(t, out, name, "%s has no block marked <!-- cluster: %s -->; TestClusterDropInUnderSystemd runs it: keep the marker", clusterDoc, name)
	}
	return out
}

// What the manual shows is the file the package ships and the systemd test
// installs, byte for byte.
func TestClusterDropInIsTheDocs(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(repo, clusterDropIn))
	require.NoError(t, err)
	assert.Equal(t, string(file), clusterBlocks(t)[clusterDropIn],
		"%s shows %s in a block marked <!-- cluster: %[2]s -->: copy the file into it", clusterDoc, clusterDropIn)
}

// perNode is the drop-in for node n (1, 2, 3) of the manual's three: the
// three lines under "This node" with n's name and address, as the file's
// header says; n = 1 is the file as shipped.
func perNode(t *testing.T, dropIn string, n int) string {
	t.Helper()
	lines := strings.Split(dropIn, "\n")
	changed := 0
	for i, l := range lines {
		for _, key := range []string{"SANDBOX0D_CLUSTER_NODE_NAME=", "SANDBOX0D_LISTEN=", "SANDBOX0D_CLUSTER_ADVERTISE_URL="} {
			if strings.HasPrefix(l, "Environment="+key) {
				l = strings.ReplaceAll(l, "=n1", fmt.Sprintf("=n%d", n))
				lines[i] = strings.ReplaceAll(l, "10.0.0.1:", fmt.Sprintf("10.0.0.%d:", n))
				changed++
			}
		}
	}
	require.Equal(t, 3, changed, "%s: the three per-node lines (node name, listen, advertise URL) are not all there", clusterDropIn)
	return strings.Join(lines, "\n")
}

// etcdMember is the manual's etcd block for member n: n1's as it is (but
// for the package's installation, which the test stands in for); for n2
// and n3 their name, addresses, certificate files, environment file, unit
// and data directory (three members share this one machine), with the
// same ETCD_INITIAL_CLUSTER.
func etcdMember(t *testing.T, block string, n int) string {
	t.Helper()
	first, rest, _ := strings.Cut(block, "\n")
	require.Equal(t, "apt-get install etcd-server", first, "%s: the etcd block starts with the package's installation", clusterDoc)
	if n == 1 {
		return rest
	}
	name := fmt.Sprintf("n%d", n)
	lines := strings.Split(rest, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "ETCD_INITIAL_CLUSTER=") {
			continue
		}
		l = strings.ReplaceAll(l, "10.0.0.1:", fmt.Sprintf("10.0.0.%d:", n))
		l = strings.ReplaceAll(l, "ETCD_NAME=n1", "ETCD_NAME="+name)
		l = strings.ReplaceAll(l, "/etc/etcd/n1", "/etc/etcd/"+name)
		l = strings.ReplaceAll(l, "/var/lib/etcd/default", "/var/lib/etcd/"+name)
		l = strings.ReplaceAll(l, "/etc/default/etcd ", "/etc/default/etcd-"+name+" ")
		if l == "systemctl restart etcd" {
			l = "systemctl restart etcd-" + name
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// The cluster drop-in under a real systemd 252: three members of Debian's
// etcd 3.4 (its own etcd.service, TLS with client certificates, the
// manual's /etc/default/etcd) on the addresses of the manual's three
// machines, and two sandbox0d nodes, each the shipped unit with the shipped
// drop-in in a container of its own (sharing the first one's network).
// Node n1 leads, n2 follows; a manual run's session is confined by
// bubblewrap; n2 serves n1's session over n1's TLS listener; after all
// three etcd members restart both nodes serve again without a restart of
// their own; and both stop cleanly.
func TestClusterDropInUnderSystemd(t *testing.T) {
	t.Parallel()
	rootfs := requirements(t, repo)
	for _, f := range []string{debianEtcd, debianEtcdUnit} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s: Debian's etcd-server is not installed (.ci/run installs it)", f)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed (Debian package iproute2; .ci/run installs it)")
	}
	repotest.TrackSources(t, "sandbox0d.service", "sandbox0d.sysusers", "packaging/config.yaml", clusterDropIn,
		clusterDoc, "examples/deployment.json", "examples/echo-harness.sh", "internal/systemdtest/testdata/cluster-hostile.sh")
	began := time.Now()
	phase := func(what string) { t.Logf("%s done at %.1f s", what, time.Since(began).Seconds()) }
	install := readmeInstall(t)
	built := make(chan error, 1)
	var binary string
	go func() {
		var err error
		binary, err = daemonBinary(install.build)
		built <- err
	}()

	// The files the containers install from, read-only at clusterSrc.
	src := t.TempDir()
	for _, f := range [][2]string{{"sandbox0d.service", "sandbox0d.service"}, {"sandbox0d.sysusers", "sandbox0d.sysusers"},
		{"examples/echo-harness.sh", "echo-harness.sh"}, {"examples/deployment.json", "deployment.json"},
		{"internal/systemdtest/testdata/cluster-hostile.sh", "cluster-hostile.sh"}} {
		copyFile(t, filepath.Join(repo, f[0]), filepath.Join(src, f[1]), 0o644)
	}
	writeFile(t, filepath.Join(src, "config.yaml"), clusterConfig(t), 0o644)
	copyFile(t, debianEtcdUnit, filepath.Join(src, "etcd.service"), 0o644)
	blocks := clusterBlocks(t)
	dropIn, err := os.ReadFile(filepath.Join(repo, clusterDropIn))
	require.NoError(t, err)
	for n := 1; n <= 3; n++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("etcd-n%d.sh", n)), etcdMember(t, blocks["etcd"], n), 0o644)
	}
	writeFile(t, filepath.Join(src, "cluster-n1.conf"), string(dropIn), 0o644) // as shipped
	writeFile(t, filepath.Join(src, "cluster-n2.conf"), perNode(t, string(dropIn), 2), 0o644)
	require.NoError(t, os.Mkdir(filepath.Join(src, "pki"), 0o755))
	ca := newPKI(t, filepath.Join(src, "pki"))
	machines := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	for n := 1; n <= 3; n++ {
		ip := machines[n-1]
		// An etcd member's certificate is its client certificate too, and
		// with ETCD_PEER_CLIENT_CERT_AUTH etcd checks that it names the
		// address a peer connects from. On three machines that is the
		// member's own; here, with the three addresses on one loopback, the
		// kernel picks the destination's, so each names all three.
		ca.issue(fmt.Sprintf("n%d", n), machines, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
		ca.issue(fmt.Sprintf("client-n%d", n), nil, x509.ExtKeyUsageClientAuth)        // sandbox0d to etcd
		ca.issue(fmt.Sprintf("node-n%d", n), []string{ip}, x509.ExtKeyUsageServerAuth) // sandbox0d's listener
	}

	// n1's container has a network of its own (the etcd ports and the
	// machines' addresses are then free whatever runs on the host); n2's
	// shares it, as the manual's three machines share a network.
	binds := []string{"--bind-ro=" + src + ":" + clusterSrc, "--bind-ro=" + debianEtcd + ":" + debianEtcd}
	c1 := boot(t, rootfs, append(binds, "--private-network")...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c1.output(30*time.Second, "journalctl", "-u", "etcd", "-u", "etcd-n2", "-u", "etcd-n3", "-o", "cat", "--no-pager", "-n", "60")
			t.Logf("etcd's journal:\n%s", out)
		}
	})
	for n := 1; n <= 3; n++ {
		// The host's ip: the container's minimal Debian has no iproute2.
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(c1.pid1), "-n", "--", "ip", "address", "add", fmt.Sprintf("10.0.0.%d/32", n), "dev", "lo")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ip address add: %s", out)
	}
	// Nothing for systemd-networkd to wait for: the test configures the
	// network (the addresses on lo), and network-online.target, which
	// Debian's etcd.service and the unit want, would otherwise wait for
	// systemd-networkd-wait-online's two-minute timeout.
	c1.run(30*time.Second, "systemctl", "mask", "systemd-networkd-wait-online.service")
	phase("n1 boot")

	// What Debian's etcd-server package installs (its binary is bound in):
	// the user, its data directory and the unit, once per member (n2 and n3
	// stand for the other machines: etcd-n2.service reads
	// /etc/default/etcd-n2), then each member's block.
	c1.run(time.Minute, "bash", "-euo", "pipefail", "-c", `S=`+clusterSrc+`
useradd --system --home-dir /var/lib/etcd --shell /usr/sbin/nologin etcd
install -d -o etcd -g etcd -m 0700 /var/lib/etcd
install -d -m 0755 /etc/etcd && install -m 0644 $S/pki/ca.pem /etc/etcd/ca.pem
for n in n1 n2 n3; do
	install -m 0644 $S/pki/$n.pem /etc/etcd/ && install -o etcd -m 0600 $S/pki/$n-key.pem /etc/etcd/
done
install -m 0644 $S/etcd.service /lib/systemd/system/etcd.service
install -m 0644 $S/etcd.service /etc/systemd/system/etcd-n2.service
install -m 0644 $S/etcd.service /etc/systemd/system/etcd-n3.service
systemctl daemon-reload`)
	// Together: a member's start (Type=notify) waits for a quorum.
	var wg sync.WaitGroup
	etcdOut := make([]string, 4)
	etcdErr := make([]error, 4)
	for n := 1; n <= 3; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			etcdOut[n], etcdErr[n] = c1.output(2*time.Minute, "bash", "-euo", "pipefail", fmt.Sprintf("%s/etcd-n%d.sh", clusterSrc, n))
		}()
	}
	// n2 boots and the nodes install while etcd starts.
	c2 := boot(t, rootfs, append(binds, fmt.Sprintf("--network-namespace-path=/proc/%d/ns/net", c1.pid1))...)
	c2.run(30*time.Second, "systemctl", "mask", "systemd-networkd-wait-online.service")
	phase("n2 boot")
	require.NoError(t, <-built)
	phase("build")
	for i, c := range []*container{c1, c2} {
		copyFile(t, binary, c.path(install.binary), 0o755)
		c.run(time.Minute, "bash", "-euo", "pipefail", "-c", nodeInstall(i+1))
	}
	// The same identity on both nodes: n1's, copied.
	c1.run(30*time.Second, "sandbox0d", "keys", "generate", "-o", "/etc/sandbox0d/identity.age.txt")
	identity, err := os.ReadFile(c1.path("/etc/sandbox0d/identity.age.txt"))
	require.NoError(t, err)
	writeFile(t, c2.path("/etc/sandbox0d/identity.age.txt"), string(identity), 0o600)
	phase("install")
	wg.Wait()
	for n := 1; n <= 3; n++ {
		require.NoError(t, etcdErr[n], "etcd member n%d's block: %s", n, etcdOut[n])
	}
	phase("etcd and install")

	// n1 first, so that it leads.
	c1.run(90*time.Second, "systemctl", "start", "sandbox0d")
	phase("n1 start")
	st := clusterStatusOf(t, c1)
	phase("n1 status")
	assert.Equal(t, "etcd", st.Engine)
	assert.Equal(t, "n1", st.Node)
	assert.Equal(t, "leader", st.Role)
	assert.Equal(t, "n1", st.Leader)
	require.Len(t, st.Endpoints, 3, "%+v", st)
	for i, e := range st.Endpoints {
		assert.Equal(t, fmt.Sprintf("https://10.0.0.%d:2379", i+1), e.URL)
		assert.True(t, e.Healthy, "endpoint %s: %s", e.URL, e.Error)
		assert.Regexp(t, `^3\.4\.\d+$`, e.Version, "Debian bookworm's etcd-server")
	}
	confined(t, c1)
	phase("n1 readyz")
	c2.run(90*time.Second, "systemctl", "start", "sandbox0d")
	phase("n2 start")
	st = clusterStatusOf(t, c2)
	assert.Equal(t, "n2", st.Node)
	assert.Equal(t, "follower", st.Role)
	assert.Equal(t, "n1", st.Leader)
	urls := map[string]string{}
	for _, n := range st.Nodes {
		urls[n.Name] = n.AdvertiseURL
	}
	assert.Equal(t, map[string]string{"n1": "https://10.0.0.1:8443", "n2": "https://10.0.0.2:8443"}, urls)
	confined(t, c2)

	// A deployment created on n1 runs from n2 (its session may be placed on
	// either node; the follow crosses over TLS when it is n1's).
	created := c1.run(30*time.Second, "sandbox0d", "deployments", "create", "-f", clusterSrc+"/deployment.json", "--json")
	var d struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(created), &d), created)
	runTurn(t, c2, d.ID)
	runTurn(t, c1, d.ID)
	sessions := sessionNodes(t, c2)
	require.Len(t, sessions, 2, "two runs, two sessions")
	// Every session read on the node that does not own it: forwarded to the
	// owner's advertise URL, whose certificate n2 verifies with the CA the
	// install added to the system's.
	for id, node := range sessions {
		other := map[string]*container{"n1": c2, "n2": c1}[node]
		require.NotNil(t, other, "session %s on node %q", id, node)
		out := other.run(30*time.Second, "sandbox0d", "sessions", "events", id)
		assert.Contains(t, out, "echo-harness done", "session %s (on %s) read through the other node", id, node)
	}
	phase("runs")
	clusterHostile(t, c1)
	phase("hostile harness")

	// All three members restart: both nodes serve again, and write, without
	// a restart of their own.
	pids := []string{mainPID(t, c1), mainPID(t, c2)}
	c1.run(2*time.Minute, "systemctl", "restart", "etcd", "etcd-n2", "etcd-n3")
	for i, c := range []*container{c1, c2} {
		var out string
		require.Eventually(t, func() bool {
			var err error
			out, err = c.output(30*time.Second, "sandbox0d", "deployments", "pause", d.ID)
			return err == nil
		}, 60*time.Second, 200*time.Millisecond, "n%d after etcd's restart: %s", i+1, out)
		c.run(30*time.Second, "sandbox0d", "deployments", "unpause", d.ID)
		assert.Equal(t, pids[i], mainPID(t, c), "n%d restarted", i+1)
	}
	require.Eventually(t, func() bool {
		// Not clusterStatusOf: this runs outside the test's goroutine.
		out, err := c2.output(30*time.Second, "sandbox0d", "cluster", "status", "--json")
		st = clusterState{}
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Leader != "" && len(st.Nodes) == 2
	}, 60*time.Second, 200*time.Millisecond, "a leader and both nodes again after etcd's restart")
	for _, e := range st.Endpoints {
		assert.True(t, e.Healthy, "endpoint %s after the restart: %s", e.URL, e.Error)
	}
	phase("etcd restart")

	// A clean stop: no kill at the stop timeout, a zero exit.
	for i, c := range []*container{c2, c1} {
		c.run(90*time.Second, "systemctl", "stop", "sandbox0d")
		out := c.run(30*time.Second, "systemctl", "show", "-p", "Result", "-p", "ExecMainStatus", "sandbox0d")
		assert.Equal(t, "Result=success\nExecMainStatus=0\n", out, "n%d's stop", 2-i)
	}
	phase("stop")
}

// clusterConfig is the package's configuration plus the hostile harness's
// agent.
func clusterConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "packaging/config.yaml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	local := cfg["local"].(map[string]any)
	local["agents"] = append(local["agents"].([]any), map[string]any{"id": "agent_hostile", "version": 1, "command": []string{clusterHostileHarness}})
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out)
}

// clusterHostile runs a turn of the cluster's hostile harness (in
// env_local, with the node's network) and checks it read no key and no
// byte of etcd, while it did reach the node's own listener.
func clusterHostile(t *testing.T, c *container) {
	t.Helper()
	api := client(c.path(socket))
	sess, err := api.Beta.Sessions.New(context.Background(), anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_hostile")},
		EnvironmentID: "env_local",
	})
	require.NoError(t, err)
	send(t, api, sess.ID, "try everything")
	stop := awaitStop(t, api, sess.ID)
	output := messages(t, api, sess.ID)
	t.Logf("the cluster's hostile harness printed:\n%s", output)
	require.Equal(t, "session.status_idle", stop.Type, "the harness must run to its end")
	require.Contains(t, output, "cluster hostile harness done", "the probes did not all run")
	assert.Contains(t, output, `reach {"status":"ok"}`, "the harness reaches the node's listener: etcd's refusal is not a missing network")
	probe := regexp.MustCompile(`(?m)^probe (\S+) (\S+): (\d+) bytes`)
	got := 0
	for _, m := range probe.FindAllStringSubmatch(output, -1) {
		got++
		assert.Equal(t, "0", m[3], "the harness read %s (%s)", m[2], m[1])
	}
	assert.Equal(t, 9, got, "probe lines")
}

// nodeInstall installs sandbox0d on node n as docs/install.md's "Running
// under systemd" does, with the package's configuration (its echo harness
// where that names it), plus the manual's cluster drop-in, the files it
// names and the cluster's CA in the system's trust store.
func nodeInstall(n int) string {
	return fmt.Sprintf(`S=%s N=n%d
install -m 0644 $S/sandbox0d.sysusers /usr/lib/sysusers.d/sandbox0d.conf && systemd-sysusers
install -d -m 0755 /etc/sandbox0d && install -g sandbox0d -m 0640 $S/config.yaml /etc/sandbox0d/config.yaml
install -D -m 0755 $S/echo-harness.sh /usr/lib/sandbox0d/echo-harness.sh
install -D -m 0755 $S/cluster-hostile.sh `+clusterHostileHarness+`
install -m 0600 /dev/null /etc/sandbox0d/upstream.key
install -m 0644 $S/sandbox0d.service /etc/systemd/system/
install -D -m 0644 $S/cluster-$N.conf /etc/systemd/system/sandbox0d.service.d/cluster.conf
install -m 0644 $S/pki/ca.pem /etc/sandbox0d/etcd-ca.pem
install -m 0644 $S/pki/client-$N.pem /etc/sandbox0d/etcd-client.pem
install -m 0600 $S/pki/client-$N-key.pem /etc/sandbox0d/etcd-client-key.pem
install -m 0644 $S/pki/node-$N.pem /etc/sandbox0d/node.pem
install -m 0600 $S/pki/node-$N-key.pem /etc/sandbox0d/node-key.pem
install -D -m 0644 $S/pki/ca.pem /usr/local/share/ca-certificates/sandbox0d-cluster.crt
# update-ca-certificates, but for the one link of it the daemon reads (Go
# reads every file in /etc/ssl/certs): the whole rebuild takes 20-35 s on
# CI's two loaded cores.
ln -s /usr/local/share/ca-certificates/sandbox0d-cluster.crt /etc/ssl/certs/sandbox0d-cluster.pem
systemctl daemon-reload
`, clusterSrc, n)
}

type clusterState struct {
	Engine, Node, Role, Leader string
	Nodes                      []struct {
		Name         string `json:"name"`
		AdvertiseURL string `json:"advertise_url"`
	}
	Endpoints []struct {
		URL     string `json:"url"`
		Healthy bool   `json:"healthy"`
		Version string `json:"version"`
		Error   string `json:"error"`
	}
}

// clusterStatusOf is `sandbox0d cluster status --json` on the node.
func clusterStatusOf(t *testing.T, c *container) clusterState {
	t.Helper()
	out := c.run(30*time.Second, "sandbox0d", "cluster", "status", "--json")
	var st clusterState
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	return st
}

// sessionNodes lists the sessions (from the shared index) with the node
// each runs on.
func sessionNodes(t *testing.T, c *container) map[string]string {
	t.Helper()
	out := c.run(30*time.Second, "sandbox0d", "sessions", "list", "--json")
	var list struct {
		Data []struct {
			ID   string `json:"id"`
			Node string `json:"node"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	nodes := map[string]string{}
	for _, s := range list.Data {
		nodes[s.ID] = s.Node
	}
	return nodes
}
