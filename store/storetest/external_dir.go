package storetest

// StartExternalIn starts n etcd processes with their data under dir,
// outside a test (the kill loop of `go run ./bench cluster -kills N` runs
// them as a user would). The caller stops them with Stop; a port taken
// between choosing and binding it is the caller's to retry.
func StartExternalIn(dir string, n int) (*Cluster, error) { return startExternal(dir, n) }
