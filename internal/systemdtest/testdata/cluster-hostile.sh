#!/bin/sh
# A hostile harness on a cluster node: it tries to read the keys that open
# the shared state (etcd's client key and the node listener's key, as
# credentials and as the files they come from, and the etcd member's key)
# and to read etcd itself without a client certificate, over TLS and over
# the plain loopback URL docs/cluster.md once had. One line each:
#   probe NAME WHAT: N bytes (what it said, cut short)
# The test asserts every N is 0, and that the harness does reach the node's
# own listener (so a refusal by etcd is not a network it lacks).
cat >/dev/null
probe() {
	n=$(cat -- "$2" 2>/dev/null | wc -c)
	said=$(head -c 48 -- "$2" 2>&1 | tr -c '[:print:]' '.')
	echo "probe $1 $2: $n bytes ($said)"
}
for f in etcd-client-key.pem node-key.pem sandbox0d-identity; do
	probe "credential-$f" "/run/credentials/sandbox0d.service/$f"
done
probe file-etcd-client-key /etc/sandbox0d/etcd-client-key.pem
probe file-node-key /etc/sandbox0d/node-key.pem
probe file-etcd-member-key /etc/etcd/n1-key.pem
# Every key of the store: a range from "\0" to "\0".
for url in https://10.0.0.1:2379 https://10.0.0.2:2379 http://127.0.0.1:2379; do
	n=$(curl -sk --max-time 5 -X POST -d '{"key":"AA==","range_end":"AA=="}' "$url/v3/kv/range" 2>/dev/null | wc -c)
	said=$(curl -sSk --max-time 5 -o /dev/null -X POST -d '{"key":"AA==","range_end":"AA=="}' "$url/v3/kv/range" 2>&1 | tr -c '[:print:]' '.' | head -c 96)
	echo "probe etcd $url: $n bytes ($said)"
done
echo "reach $(curl -sk --max-time 5 https://10.0.0.1:8443/livez)"
echo "cluster hostile harness done"
