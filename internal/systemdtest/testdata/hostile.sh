#!/bin/sh
# A hostile harness: it tries to read everything of the daemon that would
# let it open the stored tokens or drive the daemon (the identity
# credential, the identity file, the database, the config, a vault file, the
# admin socket) and prints what it got, one line each:
#   probe NAME PATH: N bytes (what reading it said, cut short)
# The test asserts every N is 0. The last line says the probes ran.
cat >/dev/null
probe() {
	n=$(cat -- "$2" 2>/dev/null | wc -c)
	said=$(head -c 48 -- "$2" 2>&1 | tr -c '[:print:]' '.')
	echo "probe $1 $2: $n bytes ($said)"
}
probe credential-identity "${CREDENTIALS_DIRECTORY:-/run/credentials/sandbox0d.service}/sandbox0d-identity"
probe credential-identity /run/credentials/sandbox0d.service/sandbox0d-identity
probe credential-upstream-key /run/credentials/sandbox0d.service/sandbox0d-upstream-key
probe identity-file /etc/sandbox0d/identity.age.txt
probe database /var/lib/sandbox0d/sandbox0d.db
probe config /etc/sandbox0d/config.yaml
probe vault /etc/sandbox0d/anthropic.env
sock=/run/sandbox0d/sandbox0d.sock
n=$(curl -sS --max-time 5 --unix-socket "$sock" http://localhost/admin/backup 2>/dev/null | wc -c)
said=$(curl -sS --max-time 5 --unix-socket "$sock" -o /dev/null -w 'HTTP %{http_code}' http://localhost/admin/backup 2>&1 | tr -c '[:print:]' '.' | head -c 96)
echo "probe socket $sock: $n bytes ($said)"
echo "hostile harness done: uid $(id -u), host $(hostname)"
