package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store/storetest"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Webhooks in a cluster (issue 25, point 6): only the leader delivers from
// the shared outbox. A receiver counts deliveries per webhook-id.

type countingReceiver struct {
	t    *testing.T
	mu   sync.Mutex
	got  map[string]int // webhook-id → deliveries received
	hold chan struct{}  // non-nil: requests wait for it (a receiver mid-answer)
	held int
}

func (h *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var payload struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		h.t.Errorf("a delivery's body is not JSON: %v", err)
	}
	id := r.Header.Get("webhook-id")
	if id == "" || id != payload.ID {
		h.t.Errorf("webhook-id %q does not name the event %q", id, payload.ID)
	}
	h.mu.Lock()
	h.got[id]++
	hold := h.hold
	if hold != nil {
		h.held++
	}
	h.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *countingReceiver) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.got))
	for k, v := range h.got {
		out[k] = v
	}
	return out
}

// perEndpoint is webhooks.max_concurrency_per_endpoint in these tests.
const perEndpoint = 4

func newWebhookClusterRig(t *testing.T) (*clusterRig, *countingReceiver) {
	rc := &countingReceiver{t: t, got: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rig := &clusterRig{etcd: storetest.Start(t, 3), prefix: "/cluster-hooks/",
		clock:   &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)},
		backend: &gatedBackend{Backend: sessionstest.New(map[string]int64{"agent_a": 1})}}
	for i := range 3 {
		dir := t.TempDir()
		cfg := baseConfig(dir)
		cfg.Socket = filepath.Join(dir, "s.sock")
		cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: rig.etcd.Endpoints(), Prefix: rig.prefix,
			DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
		cfg.Cluster = daemon.ClusterConfig{NodeName: fmt.Sprint("node-", i), LeaseTTL: 2 * time.Second}
		cfg.Webhooks = webhooks.Config{Endpoints: []webhooks.EndpointConfig{{URL: srv.URL + "/hooks",
			SigningKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, RetrySchedule: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second},
			MaxConcurrencyPerEndpoint: perEndpoint}
		logs := &syncBuffer{}
		d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), daemon.Options{Backend: rig.backend, Now: rig.clock.Now})
		require.NoError(t, err)
		rig.nodes = append(rig.nodes, startDaemon(t, d, cfg, logs))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range rig.nodes {
				t.Logf("node-%d log:\n%s", i, r.logs.String())
			}
		}
	})
	return rig, rc
}

// createOn makes one deployment (one deployment.created event) on each of
// nodes, n rounds.
func createOn(t *testing.T, nodes []*running, n int, tag string) {
	for i := range n {
		for j, r := range nodes {
			c := r.client()
			_, err := c.Beta.Deployments.New(t.Context(), minutelyParams(fmt.Sprintf("%s-%d-%d", tag, i, j)))
			require.NoError(t, err)
		}
	}
}

// settled waits until want distinct webhook-ids have arrived and nothing is
// pending in the shared store.
func settled(t *testing.T, rc *countingReceiver, on *running, want int) map[string]int {
	var got map[string]int
	require.Eventually(t, func() bool {
		got = rc.counts()
		return len(got) >= want && on.d.WebhooksPending() == 0
	}, 60*time.Second, 20*time.Millisecond, "every event delivered and nothing pending")
	return got
}

// Events written on every node are delivered exactly once each under no
// faults; with the leader stopped hard while deliveries are in flight,
// every event is still delivered, at least once, with its webhook-id.
func TestClusterWebhooksDeliverOnceFromTheLeader(t *testing.T) {
	rig, rc := newWebhookClusterRig(t)
	lead := rig.leader(t, rig.nodes)

	// The receiver holds every request while the events are written, so
	// every node's writes meet deliveries in flight: a second dispatcher
	// would take them again.
	hold := make(chan struct{})
	rc.mu.Lock()
	rc.hold = hold
	rc.mu.Unlock()
	createOn(t, rig.nodes, 5, "calm")
	// Answers come once the leader's slots for the endpoint are all
	// taken: another dispatcher would then be taking the same deliveries.
	require.Eventually(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.held >= perEndpoint
	}, 30*time.Second, 10*time.Millisecond, "the leader's slots full of deliveries in flight")
	rc.mu.Lock()
	rc.hold = nil
	rc.mu.Unlock()
	close(hold)
	got := settled(t, rc, lead, 15)
	require.Len(t, got, 15)
	for id, n := range got {
		assert.Equal(t, 1, n, "webhook-id %s delivered %d times with no fault", id, n)
	}

	// The receiver stops answering: the leader's attempts hang in flight.
	hold = make(chan struct{})
	rc.mu.Lock()
	rc.hold, rc.held = hold, 0
	rc.mu.Unlock()
	createOn(t, rig.nodes, 5, "storm")
	require.Eventually(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.held > 0
	}, 30*time.Second, 10*time.Millisecond, "a delivery in flight at the leader")
	lead.d.CrashStore()
	lead.stop(t)
	var live []*running
	for _, r := range rig.nodes {
		if r != lead {
			live = append(live, r)
		}
	}
	rc.mu.Lock()
	rc.hold = nil
	rc.mu.Unlock()
	close(hold)
	next := rig.leader(t, live)
	require.NotSame(t, lead, next)

	got = settled(t, rc, next, 30)
	assert.Len(t, got, 30, "every event of both phases, no id invented")
	redelivered := 0
	for id, n := range got {
		require.GreaterOrEqual(t, n, 1, id)
		if n > 1 {
			redelivered++
		}
	}
	// The attempts hanging when the leader died were never recorded: the
	// next leader made them again, with the same webhook-id.
	assert.Positive(t, redelivered, "the deliveries in flight at the dead leader were made again")
	t.Logf("after the leader died mid-delivery: %d events, %d delivered more than once (same webhook-id)", len(got), redelivered)
}
