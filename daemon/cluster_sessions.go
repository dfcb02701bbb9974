package daemon

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Local sessions in a cluster (issue 26). A local session's record,
// workspace, processes and events stay on the node that runs it, in that
// node's own bbolt file (data_dir/sandbox0d.db, as on one box): etcd is for
// replicated state written at human rates, not for harness output. The
// shared store holds the session index (sessions/local/index.go), which
// answers sessions.list on any node and says which node owns a session; a
// session route on another node is forwarded to the owner over
// cluster.advertise_url, authenticated with the cluster key.

// nodeSessions is this node's own file for its local sessions, with the
// webhook dispatcher of that file's outbox (a session's webhook events are
// appended in its change's own transaction, so they live in the same file).
type nodeSessions struct {
	store *store.Store
	hooks *webhooks.Dispatcher
	index *store.Namespace // in the shared store

	// owners caches session id → owner node: a session never moves, so a
	// cached owner is never wrong (a deleted session's owner answers 404).
	owners sync.Map

	// nodes caches the live nodes for a quarter lease at most: a node that
	// died is seen as such a lease TTL late anyway (its lease has to
	// expire), and a forwarded request then costs no etcd read.
	nodesMu sync.Mutex
	nodes   []store.NodeInfo
	nodesAt time.Time
}

func (n *nodeSessions) liveNodes(ctx context.Context, cl *store.Cluster, ttl time.Duration) ([]store.NodeInfo, error) {
	n.nodesMu.Lock()
	defer n.nodesMu.Unlock()
	if n.nodes != nil && time.Since(n.nodesAt) < min(ttl/4, time.Second) {
		return n.nodes, nil
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	n.nodes, n.nodesAt = nodes, time.Now()
	return nodes, nil
}

// owner is the node that owns session id ("" when the index has none).
func (n *nodeSessions) owner(id string) (string, error) {
	if v, ok := n.owners.Load(id); ok {
		return v.(string), nil
	}
	node, err := local.IndexedNode(n.index, id)
	if err == nil && node != "" {
		n.owners.Store(id, node)
	}
	return node, err
}

// openNodeSessions opens the node's own file in cluster mode with the local
// backend; nil otherwise (sessions share the one file on one box).
func openNodeSessions(cfg Config, shared *store.Store, log *slog.Logger, transport http.RoundTripper, observe func(string, time.Duration)) (*nodeSessions, error) {
	if shared.Engine() != "etcd" || cfg.Backend != "local" {
		return nil, nil
	}
	path := filepath.Join(cfg.DataDir, store.FileName)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("data_dir: opening this node's session file %s: %w", path, err)
	}
	hooks, err := webhooks.New(cfg.Webhooks, webhooks.Options{Store: st, Logger: log.With("component", "session-webhooks"),
		Transport: transport, Observe: observe})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	index, err := shared.Namespace(store.NamespaceSessionIndex)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	log.Info("cluster: local sessions in this node's own file; the session index in the shared store", "path", path)
	return &nodeSessions{store: st, hooks: hooks, index: index}, nil
}

// warnStaleCatalog says when this node's own file still holds agents,
// environments, vaults or credentials created through the API: a build
// before the catalog moved to the shared store kept them there. They are
// not served (every node reads the catalog from etcd); recreate them
// through the API.
func (n *nodeSessions) warnStaleCatalog(log *slog.Logger) {
	if n == nil {
		return
	}
	ns, err := n.store.Namespace(store.NamespaceCatalog)
	if err != nil {
		return
	}
	if count, err := local.CatalogRecords(ns); err == nil && count > 0 {
		log.Warn("cluster: this node's own file holds API-created agents, environments, vaults or credentials from before the catalog was shared; "+
			"they are not served (every node reads the catalog from etcd): create them again through the API", "records", count, "path", n.store.Path())
	}
}

func (n *nodeSessions) run(ctx context.Context) {
	if n != nil {
		_ = n.hooks.Run(ctx)
	}
}

func (n *nodeSessions) reload(cfg Config) error {
	if n == nil {
		return nil
	}
	return n.hooks.Reload(cfg.Webhooks)
}

func (n *nodeSessions) close() {
	if n != nil {
		_ = n.store.Close()
	}
}

// Node-to-node requests carry the cluster key, never the client's key. The
// key is derived from the store's cursor secret, which lives in the shared
// store (every node reads the same one and no client ever sees it): an HMAC
// of a scope no client token is issued for.
const (
	clusterKeyHeader   = "X-Sandbox0d-Cluster-Key"
	forwardedByHeader  = "X-Sandbox0d-Forwarded-By"
	clusterKeyScope    = "sandbox0d cluster node-to-node key v1"
	sessionsPathPrefix = "/v1/sessions/"
)

func (d *Daemon) clusterKey() string { return d.store.Cursors().Encode(clusterKeyScope, nil) }

// authorizeClient is the API's gate: a forwarded request from another node
// passes with the cluster key; anything else goes through the API keys.
func (d *Daemon) authorizeClient(r *http.Request) (bool, string) {
	if d.node != nil {
		if k := r.Header.Get(clusterKeyHeader); k != "" {
			if subtle.ConstantTimeCompare([]byte(k), []byte(d.clusterKey())) == 1 {
				return true, ""
			}
			return false, "invalid cluster key: the forwarding node does not share this cluster's store (store.etcd.prefix)"
		}
	}
	return d.auth.authorize(r)
}

// forwardSessions wraps the backend's session routes: a route naming a
// session another node owns is forwarded there; everything else (creation,
// the cluster-wide list, this node's sessions) is served here.
func (d *Daemon) forwardSessions(h http.Handler) http.Handler {
	if d.node == nil || h == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == placeRoute {
			d.servePlaced(w, r)
			return
		}
		if r.URL.Path == "/v1/sessions" && r.Method == http.MethodPost {
			if r.Header.Get(forwardedByHeader) != "" {
				// Placed here by another node: the load published
				// after it counts the session and drops its reservation.
				token := r.Header.Get(reservationHeader)
				h.ServeHTTP(w, r.WithContext(local.WithReservation(r.Context(), token)))
				d.publishLoad(r.Context(), token)
				return
			}
			// sessions.create is placed (cluster_place.go): here, or
			// forwarded as is to the node with the most room.
			at := d.place(r.Context())
			if at.target != nil {
				r.Header.Set(reservationHeader, at.token)
				d.forwardTo(at.target, d.config().Cluster.NodeName).ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r.WithContext(local.WithReservation(r.Context(), at.token)))
			d.publishLoad(r.Context(), at.token)
			return
		}
		id, ok := sessionOfPath(r.URL.Path)
		if !ok || r.Header.Get(forwardedByHeader) != "" { // one hop at most: no loops
			h.ServeHTTP(w, r)
			return
		}
		if lb, ok := d.backend.(*local.Backend); ok && lb.HasSession(id) {
			// This node's own session: served from its file, also while
			// etcd is away.
			h.ServeHTTP(w, r)
			return
		}
		owner, err := d.node.owner(id)
		self := d.config().Cluster.NodeName
		if err != nil {
			wire.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("cluster: reading the session index in etcd failed: %v", err))
			return
		}
		if owner == "" || owner == self {
			h.ServeHTTP(w, r)
			return
		}
		target, err := d.nodeURL(r.Context(), owner)
		if err != nil {
			d.serveUnreachable(w, r, id, owner, err)
			return
		}
		d.forwardTo(target, self).ServeHTTP(w, r)
	})
}

// serveUnreachable answers a route of session id whose owner cannot be
// reached (its lease expired): a delete leaves a tombstone the owner acts
// on when it returns (sessions/local/index_tombstone.go); a read answers as
// the leader marked the session lost; a session no longer in the index
// (deleted meanwhile through another node: the owner cache is stale) is not
// found; anything else waits for the node.
func (d *Daemon) serveUnreachable(w http.ResponseWriter, r *http.Request, id, owner string, cause error) {
	notFound := func() {
		d.node.owners.Delete(id)
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
	}
	if r.Method == http.MethodDelete && r.URL.Path == sessionsPathPrefix+id {
		found, err := local.DeleteLost(d.node.index, id, owner, d.config().Cluster.NodeName, time.Now(), d.hooks.Enabled())
		switch {
		case err != nil:
			wire.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf(
				"session %s lives on node %q, which cannot be reached (%v), and recording its delete in etcd failed: %v", id, owner, cause, err))
		case !found:
			notFound()
		default:
			d.node.owners.Delete(id)
			d.hooks.Notify()
			d.log.Info("cluster: session of an unreachable node deleted from the index; the node removes it when it returns",
				"session_id", id, "node", owner)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "type": "session_deleted"})
		}
		return
	}
	if lb, ok := d.backend.(*local.Backend); ok && lb.ServeLost(w, r, d.node.index, id) {
		return // a lost node's session reads as the leader marked it
	}
	if node, err := local.IndexedNode(d.node.index, id); err == nil && node == "" {
		notFound()
		return
	}
	wire.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf(
		"session %s lives on node %q, which cannot be reached: %v", id, owner, cause))
}

// sessionOfPath returns the session id of /v1/sessions/{id}[/…].
func sessionOfPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, sessionsPathPrefix)
	if !ok || rest == "" {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, id != ""
}

// nodeURL is the advertise_url of a live node.
func (d *Daemon) nodeURL(ctx context.Context, node string) (*url.URL, error) {
	d.clusterMu.Lock()
	cl := d.cluster
	d.clusterMu.Unlock()
	if cl == nil {
		return nil, fmt.Errorf("this node has not joined the cluster yet")
	}
	nodes, err := d.node.liveNodes(ctx, cl, d.config().Cluster.LeaseTTL)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.Name != node {
			continue
		}
		if n.AdvertiseURL == "" {
			return nil, fmt.Errorf("it has no cluster.advertise_url; set it on every node")
		}
		return url.Parse(n.AdvertiseURL)
	}
	return nil, fmt.Errorf("it holds no lease (stopped, or its lease expired)")
}

// forwardTo proxies to target: no buffering (an event stream flows as it is
// written; FlushInterval -1), the client's key removed and the cluster key
// added, the request id kept (the one this node answers with).
func (d *Daemon) forwardTo(target *url.URL, self string) http.Handler {
	key := d.clusterKey()
	return &httputil.ReverseProxy{
		FlushInterval: -1,
		Transport:     d.forwardTransport(),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("X-Api-Key")
			pr.Out.Header.Set(clusterKeyHeader, key)
			pr.Out.Header.Set(forwardedByHeader, self)
			if id := pr.In.Context().Value(requestIDKey{}); id != nil {
				pr.Out.Header.Set(wire.RequestIDHeader, id.(string))
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			wire.WriteError(w, http.StatusBadGateway, fmt.Sprintf("cluster: forwarding to %s failed: %v", target.Host, err))
		},
	}
}

type requestIDKey struct{}

// keepRequestID remembers the request id this node answers with, so the
// forwarded request carries the same one (the owner then answers with it).
func keepRequestID(h http.Handler) http.Handler {
	if h == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := w.Header().Get(wire.RequestIDHeader); id != "" {
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		}
		h.ServeHTTP(w, r)
	})
}

func (d *Daemon) forwardTransport() http.RoundTripper {
	d.clusterMu.Lock()
	defer d.clusterMu.Unlock()
	if d.fwdTransport == nil {
		d.fwdTransport, _ = clusterTransport(d.config().Cluster)
	}
	return d.fwdTransport
}

// clusterTransport is the node-to-node client: an https advertise_url is
// verified against the system roots plus cluster.ca_file (a private CA
// signing the nodes' certificates).
func clusterTransport(c ClusterConfig) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	if c.CAFile == "" {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(c.CAFile)
	if err != nil {
		return t, &ConfigError{Key: "cluster.ca_file", Problem: fmt.Sprintf("cannot be read: %v; name the PEM file of the CA that signs the nodes' https certificates, or leave it empty for the system roots", err)}
	}
	if !pool.AppendCertsFromPEM(data) {
		return t, &ConfigError{Key: "cluster.ca_file", Problem: fmt.Sprintf("%s holds no PEM certificate; name the PEM file of the CA that signs the nodes' https certificates", c.CAFile)}
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// lostNodesLoop runs on every node and acts on the leader only: every half
// lease it marks the indexed sessions of nodes that hold no lease as lost
// (sessions/local/index_lost.go), with one webhook event each.
func (d *Daemon) lostNodesLoop(ctx context.Context) {
	if d.node == nil {
		return
	}
	tick := time.NewTicker(max(d.config().Cluster.LeaseTTL/2, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d.clusterMu.Lock()
		cl := d.cluster
		d.clusterMu.Unlock()
		if cl == nil || !cl.IsLeader() {
			continue
		}
		nodes, err := cl.Nodes(ctx)
		if err != nil {
			continue // the store is away; the next tick tries again
		}
		live := map[string]bool{}
		for _, n := range nodes {
			live[n.Name] = true
		}
		marked, err := local.MarkLost(d.node.index, func(n string) bool { return live[n] }, time.Now(),
			d.config().Cluster.LeaseTTL, d.hooks.Enabled())
		if err != nil {
			d.log.Warn("cluster: marking the sessions of lost nodes failed; retrying", "error", err)
		}
		if len(marked) > 0 {
			d.log.Warn("cluster: sessions of nodes whose lease expired marked terminated", "sessions", len(marked))
			d.hooks.Notify()
		}
	}
}
