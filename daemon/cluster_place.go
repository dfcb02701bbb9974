package daemon

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/store"
)

// Placement (issue 26). Every node publishes its load on its lease (free
// turn slots, sessions running, disk free) every quarter lease and after
// each session it creates; a direct sessions.create, a manual run and a
// scheduled fire are placed on the live, uncordoned node with the most free
// slots (ties: the fewest running, then the name). Placing on another node
// is forwarding the creation to it: sessions.create is proxied as is; a
// run's creation goes through the node-to-node route below, so the run's
// intent and record stay on the node that fires (the record is fenced by
// its intent), and after a crash the intent is resolved through the
// session index, which finds a session on any node by its run.

const placeRoute = "/v1/cluster/place_session" // node-to-node only (cluster key)

// placingBackend is the backend the deployments service creates through.
type placingBackend struct {
	sessions.Backend
	d  *Daemon
	lb *local.Backend
}

// placer wraps the local backend in cluster mode; b itself otherwise.
func (d *Daemon) placer(b sessions.Backend) sessions.Backend {
	lb, ok := b.(*local.Backend)
	if !ok || d.node == nil {
		return b
	}
	return &placingBackend{Backend: b, d: d, lb: lb}
}

func (p *placingBackend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	at := p.d.place(ctx)
	if at.target == nil {
		id, err := p.Backend.CreateSession(local.WithReservation(ctx, at.token), req)
		p.d.publishLoad(ctx, at.token)
		return id, err
	}
	id, err := p.d.createOn(ctx, at, req)
	if err != nil && id == "" {
		p.d.release(at) // the target may never have seen it; a no-op when it did and published
	}
	return id, err
}

// SessionOfRun implements sessions.RunSessionFinder across nodes.
func (p *placingBackend) SessionOfRun(ctx context.Context, run sessions.RunRef) (string, error) {
	if id, err := p.lb.SessionOfRun(ctx, run); err != nil || id != "" {
		return id, err
	}
	return local.IndexedSessionOfRun(p.d.node.index, run.DeploymentID, run.RunID)
}

// placement is where a new session goes: target nil for this node; token
// is the slot reserved on node ("" when none could be).
type placement struct {
	target *url.URL
	node   string
	token  string
}

// reservationHeader carries a placement's reservation to the node that
// creates the session, which drops it when it publishes its load.
const reservationHeader = "X-Sandbox0d-Reservation"

// place picks the node for a new session and reserves a slot on it
// (store/cluster_reserve.go): of simultaneous placements that read the same
// loads, one reserves and the others read again, so no node gets more
// sessions than its free slots while another has room. It answers this
// node when placement cannot be decided (the store away, no load published
// yet, the chosen node unreachable).
func (d *Daemon) place(ctx context.Context) placement {
	d.clusterMu.Lock()
	cl := d.cluster
	d.clusterMu.Unlock()
	me := d.config().Cluster.NodeName
	if cl == nil {
		return placement{}
	}
	for range 100 {
		loads, err := cl.Loads(ctx)
		if err != nil {
			d.log.Warn("cluster: placement could not read the nodes' load; creating on this node", "error", err)
			return placement{}
		}
		loads = slices.DeleteFunc(loads, func(l store.NodeLoad) bool { return l.Cordoned })
		if len(loads) == 0 {
			return placement{}
		}
		slices.SortFunc(loads, func(a, b store.NodeLoad) int {
			return cmp.Or(cmp.Compare(b.Free(), a.Free()), cmp.Compare(a.Running+len(a.Reserved), b.Running+len(b.Reserved)),
				cmp.Compare(a.Node, b.Node))
		})
		best := loads[0]
		token := rand.Text()
		ok, err := cl.Reserve(ctx, best, token)
		if err != nil {
			d.log.Warn("cluster: placement could not reserve a slot; creating on this node", "node", best.Node, "error", err)
			return placement{}
		}
		if !ok {
			continue // another placement (or the node's publish) changed its load: choose again
		}
		at := placement{node: best.Node, token: token}
		if best.Node == me {
			return at
		}
		u, err := d.nodeURL(ctx, best.Node)
		if err != nil {
			d.log.Warn("cluster: the placed node cannot be reached; creating on this node", "node", best.Node, "error", err)
			d.release(at)
			return placement{}
		}
		at.target = u
		return at
	}
	d.log.Warn("cluster: placement kept conflicting with other placements; creating on this node")
	return placement{}
}

// release drops a reservation whose creation did not happen on its node.
func (d *Daemon) release(at placement) {
	d.clusterMu.Lock()
	cl := d.cluster
	d.clusterMu.Unlock()
	if cl == nil || at.token == "" {
		return
	}
	if err := cl.Release(context.Background(), at.node, at.token); err != nil {
		d.log.Debug("cluster: releasing a placement's reservation failed; it lapses by itself", "node", at.node, "error", err)
	}
}

// publishLoad writes this node's load now, dropping the reservation
// release (of a session just created here, which the load now counts).
func (d *Daemon) publishLoad(ctx context.Context, release string) {
	d.clusterMu.Lock()
	cl := d.cluster
	d.clusterMu.Unlock()
	lb, ok := d.backend.(*local.Backend)
	if cl == nil || !ok {
		return
	}
	var diskFree uint64
	var fs syscall.Statfs_t
	if syscall.Statfs(d.config().DataDir, &fs) == nil {
		diskFree = fs.Bavail * uint64(fs.Bsize)
	}
	load := func() store.NodeLoad {
		free, running, counted := lb.Load()
		return store.NodeLoad{FreeSlots: free, Running: running, DiskFree: diskFree, Counted: counted}
	}
	if err := cl.PublishLoad(ctx, load, release); err != nil {
		d.log.Debug("cluster: publishing this node's load failed", "error", err)
	}
}

// loadLoop publishes the load every quarter lease.
func (d *Daemon) loadLoop(ctx context.Context) {
	if d.node == nil {
		return
	}
	tick := time.NewTicker(max(d.config().Cluster.LeaseTTL/4, 50*time.Millisecond))
	defer tick.Stop()
	var lease int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d.publishLoad(ctx, "")
		d.clusterMu.Lock()
		cl := d.cluster
		d.clusterMu.Unlock()
		lb, ok := d.backend.(*local.Backend)
		if cl == nil || cl.LeaseID() == 0 || !ok {
			continue
		}
		// Every tick: the deletes made through other nodes while this one
		// was away, and the session changes whose index copy failed. On a
		// new lease (the first, or one after this node's lapsed under load
		// or a partition) every record is copied again: while it held none
		// the leader may have marked its sessions lost; its own records win.
		cur := cl.LeaseID()
		if err := lb.SyncIndex(cur != lease); err != nil {
			d.log.Warn("cluster: bringing the session index up to date failed; retrying", "error", err)
			continue
		}
		lease = cur
	}
}

// placeAnswer is the node-to-node route's answer.
type placeAnswer struct {
	SessionID string `json:"session_id,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
	Message   string `json:"message,omitempty"`
}

// createOn asks the node at target to create the session. The request holds
// the resources' tokens: it crosses only the node-to-node channel (an https
// advertise_url beyond loopback).
func (d *Daemon) createOn(ctx context.Context, at placement, req sessions.CreateRequest) (string, error) {
	target := at.target
	body, err := json.Marshal(req)
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: err.Error()}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target.JoinPath(placeRoute).String(), bytes.NewReader(body))
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: err.Error()}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	hreq.Header.Set(clusterKeyHeader, d.clusterKey())
	hreq.Header.Set(forwardedByHeader, d.config().Cluster.NodeName)
	hreq.Header.Set(reservationHeader, at.token)
	resp, err := d.forwardTransport().RoundTrip(hreq)
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: fmt.Sprintf("cluster: creating the session on %s failed: %v", target.Host, err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans placeAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &ans) != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: fmt.Sprintf("cluster: creating the session on %s: HTTP %d: %.200s", target.Host, resp.StatusCode, data)}
	}
	if ans.SessionID == "" {
		return "", &sessions.RunError{Type: sessions.ErrorType(ans.ErrorType), Message: ans.Message}
	}
	return ans.SessionID, nil
}

// servePlaced is the node-to-node route: create a placed session here.
func (d *Daemon) servePlaced(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get(clusterKeyHeader) == "" {
		wire.WriteError(w, http.StatusNotFound, "not found")
		return
	}
	var req sessions.CreateRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "cluster: a placed session's request could not be read: "+err.Error())
		return
	}
	id, err := d.backend.CreateSession(local.WithReservation(r.Context(), r.Header.Get(reservationHeader)), req)
	d.publishLoad(r.Context(), r.Header.Get(reservationHeader))
	ans := placeAnswer{SessionID: id}
	if err != nil {
		re := sessions.AsRunError(err)
		ans = placeAnswer{ErrorType: string(re.Type), Message: re.Message}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}
