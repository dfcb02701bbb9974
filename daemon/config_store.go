package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/sandbox0/sandbox0d/store"
)

// StoreConfig selects the store engine (issue 25): the embedded bbolt file
// in data_dir, or an etcd cluster shared by several nodes.
type StoreConfig struct {
	Type string          `mapstructure:"type"` // bbolt or etcd
	Etcd StoreEtcdConfig `mapstructure:"etcd"`
}

// StoreEtcdConfig reaches the etcd cluster.
type StoreEtcdConfig struct {
	Endpoints      []string      `mapstructure:"endpoints"`
	Prefix         string        `mapstructure:"prefix"`
	CAFile         string        `mapstructure:"ca_file"`
	CertFile       string        `mapstructure:"cert_file"`
	KeyFile        string        `mapstructure:"key_file"`
	Username       string        `mapstructure:"username"`
	PasswordFile   string        `mapstructure:"password_file"`
	DialTimeout    time.Duration `mapstructure:"dial_timeout"`
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	MaxTxnOps      int           `mapstructure:"max_txn_ops"`
	AllowPlaintext bool          `mapstructure:"allow_plaintext"`
	ReadMirror     bool          `mapstructure:"read_mirror"`
}

// ClusterConfig names this node among the nodes sharing an etcd store.
type ClusterConfig struct {
	NodeName     string        `mapstructure:"node_name"`
	AdvertiseURL string        `mapstructure:"advertise_url"`
	LeaseTTL     time.Duration `mapstructure:"lease_ttl"`
	CAFile       string        `mapstructure:"ca_file"`
}

func defaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "sandbox0d"
	}
	return h
}

func setStoreDefaults(v *viper.Viper) {
	v.SetDefault("store.type", "bbolt")
	v.SetDefault("store.etcd.endpoints", []string{})
	v.SetDefault("store.etcd.prefix", store.DefaultEtcdPrefix)
	v.SetDefault("store.etcd.ca_file", "")
	v.SetDefault("store.etcd.cert_file", "")
	v.SetDefault("store.etcd.key_file", "")
	v.SetDefault("store.etcd.username", "")
	v.SetDefault("store.etcd.password_file", "")
	v.SetDefault("store.etcd.dial_timeout", 5*time.Second)
	v.SetDefault("store.etcd.request_timeout", 5*time.Second)
	v.SetDefault("store.etcd.max_txn_ops", store.DefaultMaxTxnOps)
	v.SetDefault("store.etcd.allow_plaintext", false)
	v.SetDefault("store.etcd.read_mirror", true)
	v.SetDefault("cluster.node_name", defaultNodeName())
	v.SetDefault("cluster.advertise_url", "")
	v.SetDefault("cluster.lease_ttl", 10*time.Second)
	v.SetDefault("cluster.ca_file", "")
}

// storeKeyDocs join keyDocs (config_doc.go) from here, so the cluster keys
// stay next to the code that reads them.
var storeKeyDocs = map[string]keyDoc{
	"store.type":                 {"`bbolt` (one file in `data_dir`, one node) or `etcd` (state in an etcd cluster shared by several nodes; see docs/cluster.md)", ""},
	"store.etcd.endpoints":       {"client URLs of the etcd members (env `SANDBOX0D_STORE_ETCD_ENDPOINTS`, comma-separated); `http://` beyond loopback needs `store.etcd.allow_plaintext`", ""},
	"store.etcd.prefix":          {"key prefix of this install in etcd (ends in `/`); two installs can share a cluster under different prefixes", ""},
	"store.etcd.ca_file":         {"CA certificate(s) that sign the etcd members' certificates (PEM); empty: the system pool", ""},
	"store.etcd.cert_file":       {"client certificate for etcd (PEM; set together with `store.etcd.key_file`)", ""},
	"store.etcd.key_file":        {"client private key for etcd (PEM)", ""},
	"store.etcd.username":        {"etcd user (with `store.etcd.password_file`); empty: no etcd auth", ""},
	"store.etcd.password_file":   {"file holding the etcd user's password (one line)", ""},
	"store.etcd.dial_timeout":    {"how long start waits for etcd before it fails naming the endpoints", ""},
	"store.etcd.request_timeout": {"bound on one etcd call: past it the API answers `503` naming etcd instead of hanging, and `/readyz` fails", ""},
	"store.etcd.max_txn_ops":     {"the cluster's `--max-txn-ops`: the most compares or writes one transaction carries; group commits split to fit", ""},
	"store.etcd.allow_plaintext": {"allow `http://` endpoints beyond loopback (the whole state, sealed tokens included, would cross the network unencrypted)", ""},
	"store.etcd.read_mirror":     {"keep a watch-fed copy of the deployment documents on this node, so a retrieve costs a share of one linearizable read instead of a read of its own (memory: about the documents' size; off on members older than 3.4.31 / 3.5.13, see docs/cluster.md)", ""},
	"cluster.node_name":          {"this node's name among the nodes of one etcd store (leader election, `sandbox0d cluster status`)", "the host name"},
	"cluster.advertise_url":      {"how the other nodes reach this node's API (shown in cluster status)", ""},
	"cluster.ca_file":            {"CA certificate(s) (PEM) that sign the other nodes' `https://` `cluster.advertise_url` certificates, trusted for node-to-node requests besides the system roots; read at start", ""},
	"cluster.lease_ttl":          {"lease of this node's leadership in etcd: a dead leader is replaced within about this long; a leader steps down before its lease can lapse", ""},
}

func init() {
	for k, d := range storeKeyDocs {
		keyDocs[k] = d
	}
}

// validateStore checks the store and cluster keys.
func (c Config) validateStore() error {
	switch c.Store.Type {
	case "", "bbolt":
		return nil
	case "etcd":
	default:
		return &ConfigError{Key: "store.type", Problem: fmt.Sprintf("must be bbolt or etcd, got %q", c.Store.Type)}
	}
	e := c.Store.Etcd
	eps := splitEndpoints(e.Endpoints)
	if len(eps) == 0 {
		return &ConfigError{Key: "store.etcd.endpoints", Problem: "is required with store.type etcd: list the client URLs of the cluster's members (or set SANDBOX0D_STORE_ETCD_ENDPOINTS)"}
	}
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return &ConfigError{Key: "store.etcd.endpoints", Problem: fmt.Sprintf("%q is not an http:// or https:// URL with a host", ep)}
		}
		if u.Scheme == "http" && !e.AllowPlaintext && !isLoopback(u.Hostname()) {
			return &ConfigError{Key: "store.etcd.endpoints", Problem: fmt.Sprintf(
				"%s is plain http to a host beyond loopback: the whole state, sealed tokens and API key hashes included, would cross the network unencrypted; "+
					"use https:// with store.etcd.ca_file (and a client certificate), or set store.etcd.allow_plaintext: true on a trusted network", ep)}
		}
	}
	if !strings.HasSuffix(e.Prefix, "/") {
		return &ConfigError{Key: "store.etcd.prefix", Problem: fmt.Sprintf("%q must end in \"/\"", e.Prefix)}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		return &ConfigError{Key: "store.etcd.cert_file", Problem: "store.etcd.cert_file and store.etcd.key_file are set together"}
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		return &ConfigError{Key: "store.etcd.username", Problem: "store.etcd.username and store.etcd.password_file are set together"}
	}
	if e.MaxTxnOps < 0 || e.DialTimeout < 0 || e.RequestTimeout < 0 {
		return &ConfigError{Key: "store.etcd", Problem: "max_txn_ops, dial_timeout and request_timeout must not be negative"}
	}
	if c.Cluster.LeaseTTL != 0 && c.Cluster.LeaseTTL < 2*time.Second {
		return &ConfigError{Key: "cluster.lease_ttl", Problem: fmt.Sprintf("%s is too short: a leader renews at a third of it and steps down a margin before it lapses; use at least 2s (default 10s)", c.Cluster.LeaseTTL)}
	}
	if c.Cluster.NodeName == "" {
		return &ConfigError{Key: "cluster.node_name", Problem: "must not be empty with store.type etcd"}
	}
	return nil
}

func isLoopback(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitEndpoints accepts a list, or one comma-separated string (the env form).
func splitEndpoints(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// checkEtcdKeys validates store.etcd.* as store.type etcd would, for the
// commands that reach etcd whatever store.type says (migrate, keys rotate
// --etcd): plain http beyond loopback stays refused there too.
func (c Config) checkEtcdKeys() error {
	c.Store.Type = "etcd"
	if c.Cluster.NodeName == "" {
		c.Cluster.NodeName = "-" // these commands are no node
	}
	return c.validateStore()
}

// openStore opens the configured engine.
func openStore(cfg Config) (*store.Store, string, error) {
	if cfg.Store.Type != "etcd" {
		path := filepath.Join(cfg.DataDir, store.FileName)
		// API writes and fires share commits through store.Write (group
		// commit), which needs no batch tuning.
		st, err := store.Open(path, store.Options{})
		return st, path, err
	}
	opts, err := etcdOptions(cfg.Store.Etcd)
	if err != nil {
		return nil, "", err
	}
	st, err := store.OpenEtcd(opts)
	return st, "etcd " + strings.Join(opts.Endpoints, ",") + " " + cfg.Store.Etcd.Prefix, err
}

// etcdOptions maps the store.etcd keys onto the client's options.
func etcdOptions(e StoreEtcdConfig) (store.EtcdOptions, error) {
	opts := store.EtcdOptions{Endpoints: splitEndpoints(e.Endpoints), Prefix: e.Prefix, Username: e.Username,
		DialTimeout: e.DialTimeout, RequestTimeout: e.RequestTimeout, MaxTxnOps: e.MaxTxnOps, NoReadMirror: !e.ReadMirror}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return opts, &ConfigError{Key: "store.etcd.password_file", Problem: err.Error()}
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	tlsCfg, err := etcdTLS(e)
	if err != nil {
		return opts, err
	}
	opts.TLS = tlsCfg
	return opts, nil
}

// etcdTLS builds the client TLS configuration; nil when no endpoint is https.
func etcdTLS(e StoreEtcdConfig) (*tls.Config, error) {
	secure := false
	for _, ep := range splitEndpoints(e.Endpoints) {
		secure = secure || strings.HasPrefix(ep, "https://")
	}
	if !secure && e.CAFile == "" && e.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, &ConfigError{Key: "store.etcd.ca_file", Problem: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Key: "store.etcd.ca_file", Problem: e.CAFile + " holds no PEM certificate"}
		}
		cfg.RootCAs = pool
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, &ConfigError{Key: "store.etcd.cert_file", Problem: err.Error()}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
