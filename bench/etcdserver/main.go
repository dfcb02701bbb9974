// Command etcdserver is the etcd server at the version of this module's
// etcd client (go.etcd.io/etcd/server/v3), for the benchmarks that run etcd
// as processes: the kill loop on Debian's etcd 3.4.23 runs without the read
// mirror, which needs 3.4.31 / 3.5.13 or later. Build it and point the
// harness at it:
//
//	go build -o /tmp/etcd37 ./bench/etcdserver
//	SANDBOX0D_ETCD_BINARY=/tmp/etcd37 go run ./bench cluster -kills 20
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
