package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// `sandbox0d migrate` (issue 25 item 8): a single box grows into a cluster
// by copying its bbolt file into an empty etcd prefix, and a cluster goes
// back to one box by copying the prefix into a new bbolt file. Both sides
// must be still: the file's lock proves no daemon has it open, and on the
// way back no node may hold a lease on the prefix.

// MigrateRequest says which way to copy.
type MigrateRequest struct {
	// To is "etcd" (the data dir's file into store.etcd.prefix) or "bbolt"
	// (the prefix into File).
	To string
	// File: to etcd, the source file (default data_dir/sandbox0d.db); to
	// bbolt, the new file (required; it must not exist or hold no data).
	File string
	// LocalFrom (to bbolt) is the node's own file whose node-local
	// namespaces (its local sessions) come along; default
	// data_dir/sandbox0d.db when it exists. "-" leaves them out.
	LocalFrom string
}

// migrateLockTimeout bounds the wait for a file's lock: a daemon holds it
// for as long as it runs, so waiting longer would not help.
const migrateLockTimeout = time.Second

// Migrate copies the shared state between the engines and prints what it
// copied, verified, to out.
func Migrate(cfg Config, req MigrateRequest, out io.Writer) error {
	if err := cfg.checkEtcdKeys(); err != nil {
		return err
	}
	opts, err := etcdOptions(cfg.Store.Etcd)
	if err != nil {
		return err
	}
	switch req.To {
	case "etcd":
		return migrateToEtcd(cfg, req, opts, out)
	case "bbolt":
		return migrateToBolt(cfg, req, opts, out)
	}
	return fmt.Errorf("--to %q: say etcd (this data dir's file into store.etcd.prefix) or bbolt (the prefix into a new file)", req.To)
}

// openStill opens a bbolt file that no daemon may have open.
func openStill(path, role string) (*store.Store, error) {
	st, err := store.Open(path, store.Options{LockTimeout: migrateLockTimeout})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s %s is locked by a running sandbox0d: stop it first (systemctl stop sandbox0d); migrate copies only what nothing writes to", role, path)
	}
	return st, err
}

func migrateToEtcd(cfg Config, req MigrateRequest, opts store.EtcdOptions, out io.Writer) error {
	path := req.File
	if path == "" {
		path = filepath.Join(cfg.DataDir, store.FileName)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("the source %s: %w (data_dir, or --file, names the bbolt file to copy)", path, err)
	}
	src, err := openStill(path, "the source")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := store.OpenEtcd(opts)
	if err != nil {
		return err
	}
	defer dst.Close()
	counts, err := store.Migrate(src, dst, store.MigrateOptions{})
	if err != nil {
		return fmt.Errorf("migrate to etcd: %w", err)
	}
	fmt.Fprintf(out, "Copied the bbolt file %s into etcd (store.etcd.prefix %s, store.etcd.endpoints %s).\n", path, prefixOr(opts.Prefix), strings.Join(opts.Endpoints, ","))
	printCounts(out, counts)
	if n := keysIn(counts, "webhook_due") + keysIn(counts, "webhook_outbox"); n > 0 {
		// With the local backend the node keeps this file as its session
		// file, whose dispatcher would offer them too.
		fmt.Fprintf(out, "Note: %d webhook deliveries were pending; the cluster's leader delivers them. With backend local this node's session file (this file) still queues them as well, so a receiver may see them twice, with the same webhook-id.\n", n)
	}
	fmt.Fprintf(out, "The file is unchanged. Its node-local namespaces (%s) stay in it: start this node with store.type etcd on this data dir and it keeps serving them.\n",
		strings.Join(store.NodeNamespaces(), ", "))
	fmt.Fprintln(out, "Every node needs this node's age identity file (docs/cluster.md, \"Secrets\").")
	return nil
}

func migrateToBolt(cfg Config, req MigrateRequest, opts store.EtcdOptions, out io.Writer) error {
	if req.File == "" {
		return fmt.Errorf("--file: name the new bbolt file to copy etcd's store.etcd.prefix %s into (it must not exist yet); then stop the nodes, put it in the data dir as %s and start with store.type bbolt",
			prefixOr(opts.Prefix), store.FileName)
	}
	src, err := store.OpenEtcd(opts)
	if err != nil {
		return err
	}
	defer src.Close()
	if nodes, err := src.LiveNodes(); err != nil {
		return err
	} else if len(nodes) > 0 {
		return fmt.Errorf("nodes %s still hold a lease on store.etcd.prefix %s: stop every node (systemctl stop sandbox0d on each) and wait a cluster.lease_ttl, then migrate; a copy taken while they write could miss their last changes",
			strings.Join(nodes, ", "), prefixOr(opts.Prefix))
	}
	localFrom := req.LocalFrom
	if localFrom == "" {
		localFrom = filepath.Join(cfg.DataDir, store.FileName)
		if _, err := os.Stat(localFrom); errors.Is(err, fs.ErrNotExist) || sameFile(localFrom, req.File) {
			localFrom = "-"
		}
	}
	_, statErr := os.Stat(req.File)
	created := errors.Is(statErr, fs.ErrNotExist)
	dst, err := openStill(req.File, "the target")
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = dst.Close()
		if created {
			_ = os.Remove(req.File) // a rerun starts from nothing
		}
		return err
	}
	counts, err := store.Migrate(src, dst, store.MigrateOptions{})
	if err != nil {
		return fail(fmt.Errorf("migrate to bbolt: %w", err))
	}
	if localFrom != "-" {
		node, err := openStill(localFrom, "this node's own file")
		if err != nil {
			return fail(err)
		}
		local, err := store.CopyNamespaces(node, dst, store.MigrateOptions{Namespaces: store.NodeNamespaces()})
		_ = node.Close()
		if err != nil {
			return fail(fmt.Errorf("copy this node's own namespaces from %s: %w", localFrom, err))
		}
		counts = append(counts, local...)
	}
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "Copied etcd (store.etcd.prefix %s, store.etcd.endpoints %s) into the bbolt file %s.\n", prefixOr(opts.Prefix), strings.Join(opts.Endpoints, ","), req.File)
	if localFrom != "-" {
		fmt.Fprintf(out, "With this node's own namespaces (%s) from %s.\n", strings.Join(store.NodeNamespaces(), ", "), localFrom)
	}
	printCounts(out, counts)
	fmt.Fprintf(out, "etcd is unchanged. To run on the file: put it in the data dir as %s and start with store.type bbolt.\n", store.FileName)
	return nil
}

func prefixOr(p string) string {
	if p == "" {
		return store.DefaultEtcdPrefix
	}
	return p
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(fa, fb)
}

// printCounts prints each namespace's verified key count and the buckets
// that hold keys.
func printCounts(out io.Writer, counts []store.NamespaceCount) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tBUCKET\tKEYS\tVERIFIED")
	for _, ns := range counts {
		label := store.NamespaceLabel(ns.Namespace)
		for _, b := range ns.Buckets {
			if b.Keys > 0 || b.Sequence > 0 {
				fmt.Fprintf(w, "%s\t%s\t%d\tok\n", label, b.Bucket, b.Keys)
			}
		}
		fmt.Fprintf(w, "%s\t(all %d buckets)\t%d\tok\n", label, len(ns.Buckets), ns.Keys)
	}
	_ = w.Flush()
	fmt.Fprintln(out, "Verified: every bucket's key count, sequence and contents (SHA-256) match on both sides.")
}

func keysIn(counts []store.NamespaceCount, bucket string) int {
	n := 0
	for _, ns := range counts {
		for _, b := range ns.Buckets {
			if b.Bucket == bucket {
				n += b.Keys
			}
		}
	}
	return n
}
