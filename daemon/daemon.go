package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/console"
	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/internal/idempotency"
	"github.com/sandbox0/sandbox0d/internal/ratelog"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Options override parts of the wiring (tests and benchmarks).
type Options struct {
	// Backend replaces the configured session backend.
	Backend sessions.Backend
	// Now replaces the clock.
	Now func() time.Time
	// WebhookTransport replaces the HTTP transport of webhook deliveries.
	WebhookTransport http.RoundTripper
	// Limits replaces DefaultServerLimits.
	Limits *ServerLimits
}

// Daemon is a wired sandbox0d instance.
type Daemon struct {
	log     *slog.Logger
	store   *store.Store
	sealer  *nodeSealer // the age keyring, behind the cluster's sealing check (sealer.go)
	backend sessions.Backend
	egress  *egress.Proxy // limited networks of local sessions; nil otherwise
	svc     *deployments.Service
	sched   *deployments.Scheduler
	echo    *echo.Echo
	metrics *metrics
	hooks   *webhooks.Dispatcher
	auth    Authenticator
	idem    *idempotency.Guard
	console *console.Console // nil: console.enabled is false

	cfgMu sync.RWMutex
	cfg   Config

	identityPath           string
	identityFromCredential bool
	rotateMu               sync.Mutex
	schedulerRunning       atomic.Bool

	limits ServerLimits
	// sessionLimits is how this host enforces local sessions' limits; nil
	// without the local backend.
	sessionLimits *sandbox.Enforcement
	// disk keeps the disk.min_free reserve on the data dir's file system
	// (nil: no reserve); pressureLog rate-limits the WARN lines of refused
	// connections and accept failures.
	disk        *diskspace.Guard
	pressureLog *ratelog.Limiter
	certs       certStore
	streams     streamTracker
	listeners   []boundListener
	tcpAddr     net.Addr
	ready       chan struct{}

	// cluster is this node's membership with store.type etcd (cluster.go).
	clusterMu sync.Mutex
	cluster   *store.Cluster
	// node is this node's own session file in cluster mode with the local
	// backend (cluster_sessions.go, issue 26); nil otherwise.
	node         *nodeSessions
	fwdTransport *http.Transport
	termSched    atomic.Pointer[deployments.Scheduler] // the leader's current term
}

type boundListener struct {
	net.Listener
	kind connKind
	tls  bool
}

// New opens the store, loads the keyring, builds the backend, resolves
// leftover run intents, loads the scheduler and binds the listeners. It does
// not serve yet: Run does.
func New(cfg Config, log *slog.Logger, opts Options) (_ *Daemon, err error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Daemon{cfg: cfg, log: log, ready: make(chan struct{}), limits: DefaultServerLimits}
	if opts.Limits != nil {
		d.limits = *opts.Limits
	}
	raiseFileLimit(log)
	defer func() {
		if err != nil {
			// A failed start has no sessions worth waiting for.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			d.closeAll(ctx)
			if d.store != nil {
				_ = d.store.Close()
			}
			d.node.close() // issue 26
		}
	}()
	var where string
	if d.store, where, err = openStore(cfg); err != nil {
		return nil, err
	}
	log.Info("store open", "engine", d.store.Engine(), "path", where)
	warnExposedSecrets(cfg, log)
	d.disk = diskspace.New(diskspace.Config{Path: cfg.DataDir, Reserve: cfg.Disk.MinFree, Logger: log})

	d.identityPath, d.identityFromCredential = crypto.ResolveIdentityPath(cfg.DataDir, cfg.IdentityFile)
	sealed, err := sealedSecrets(d.store)
	if err != nil {
		return nil, err
	}
	keyring, err := crypto.StartupKeyring(d.identityPath, d.identityFromCredential, sealed, log)
	if err != nil {
		if d.store.Engine() == "etcd" {
			// The secrets are the cluster's: the likely cause is a node
			// joining without the identity the others hold.
			err = fmt.Errorf("%w (cluster mode: every node must hold the same age identity; install the other nodes' identity file on this node, see docs/cluster.md, and do not forget the secrets: that would drop them for every node)", err)
		}
		return nil, err
	}
	d.sealer = newNodeSealer(keyring, d.store, d.identityPath)
	if err := d.claimSealRecipient(log); err != nil {
		return nil, err
	}

	// The webhook dispatcher comes before the writers that append to its
	// outbox (the session backend, the service); it delivers once Run starts.
	if d.hooks, err = webhooks.New(cfg.Webhooks, webhooks.Options{
		Store: d.store, Logger: log, Transport: opts.WebhookTransport,
		Observe: func(result string, took time.Duration) { d.metrics.observeWebhook(result, took) },
	}); err != nil {
		return nil, err
	}
	d.backend = opts.Backend
	if d.backend == nil {
		// Issue 26: in a cluster, local sessions live in this node's own
		// file, indexed in the shared store (cluster_sessions.go).
		sessStore, sessHooks, sessIndex := d.store, d.hooks, (*store.Namespace)(nil)
		if d.node, err = openNodeSessions(cfg, d.store, log, opts.WebhookTransport,
			func(result string, took time.Duration) { d.metrics.observeWebhook(result, took) }); err != nil {
			return nil, err
		} else if d.node != nil {
			sessStore, sessHooks, sessIndex = d.node.store, d.node.hooks, d.node.index
			if d.fwdTransport, err = clusterTransport(cfg.Cluster); err != nil {
				return nil, err
			}
		}
		// The catalog (API agents, environments, vaults, credentials) is
		// the daemon store's: shared by every node in a cluster.
		catalog, err := d.store.Namespace(store.NamespaceCatalog)
		if err != nil {
			return nil, err
		}
		if d.backend, d.egress, err = buildBackend(cfg, sessStore, sessHooks, d.disk, d.sealer, log, sessIndex, catalog); err != nil {
			return nil, err
		}
		d.node.warnStaleCatalog(log)
		if cfg.Backend == "local" {
			d.sessionLimits = logSessionLimits(log, sandbox.LimitsEnforcement())
		}
	}
	log.Info("session backend ready", "backend", d.backend.Name())

	// Construction runs one way: store → metrics' instruments → service →
	// scheduler (which subscribes to the service) → the metrics that read
	// the scheduler.
	d.metrics = newMetrics(d.store, d.backend.Name())
	d.registerClusterMetrics()
	if d.egress != nil {
		d.metrics.registerEgress(d.egress)
	}
	if mode := d.sandboxMode(); mode != "" {
		d.metrics.registerSandbox(mode)
	}
	d.metrics.watchWebhooks(d.hooks)
	d.svc = deployments.NewService(deployments.Config{
		// placer: in a cluster, sessions are placed on the node with room (issue 26).
		Store: d.store, Backend: d.placer(d.backend), Sealer: d.sealer, Now: opts.Now, Logger: log,
		OnRun: d.metrics.observeRun, Events: d.hooks, DSTPolicy: cfg.Schedule.Policy(),
	})
	if d.store.Engine() == "etcd" {
		// In a cluster the leader resolves intents, only those of nodes
		// whose lease expired (cluster.go): another node's fire may be in
		// flight right now.
	} else if n, err := d.svc.RecoverIntents(); err != nil {
		return nil, fmt.Errorf("recover run intents: %w", err)
	} else if n > 0 {
		log.Warn("resolved run intents left by a previous process as unknown_error runs", "runs", n)
	}
	// deployments_dir is applied before the scheduler loads, so the first
	// plan already holds the files' schedules.
	d.applyDeploymentsDir(cfg.DeploymentsDir)
	d.sched = deployments.NewScheduler(d.svc, deployments.SchedulerConfig{
		Workers:      cfg.Schedule.Workers,
		Jitter:       cfg.Schedule.Jitter,
		MisfireGrace: cfg.Schedule.MisfireGrace,
		Observe:      d.metrics.observeFire,
	})
	d.metrics.watchScheduler(d.currentLoop)
	stats, err := d.sched.Load()
	if err != nil {
		return nil, fmt.Errorf("load schedules: %w", err)
	}
	log.Info("scheduler loaded", "scheduled", stats.Scheduled, "dst_policy", cfg.Schedule.Policy().String(), "misfires_run", stats.MisfiresRun, "misfires_skipped", stats.MisfiresSkipped)

	if err := d.reloadKeys(); err != nil {
		return nil, err
	}
	d.idem = idempotency.New(idempotency.Config{Store: d.store, Now: opts.Now, Scope: d.idempotencyScope, Logger: log})
	d.echo = httpapi.New(httpapi.Config{
		Service:         d.svc,
		Sessions:        keepRequestID(d.forwardSessions(httpapi.SessionHandler(d.backend))), // issue 26: forwarded to the owner node
		SessionsProxied: httpapi.ProxiesSessions(d.backend),
		Logger:          log,
		Authorize:       d.authorizeClient, // issue 26: the auth keys, or the cluster key of a forwarding node
		Middleware:      []echo.MiddlewareFunc{d.metrics.middleware, d.diskReserve},
		OwnRoutes:       []echo.MiddlewareFunc{d.idem.Middleware},
		Extra: func(e *echo.Echo) {
			d.registerHealth(e)
			d.registerAdmin(e)
		},
	})
	d.console = d.buildConsole(cfg)
	if err := d.bindListeners(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) bindListeners(cfg Config) error {
	if cfg.Socket != "" {
		l, err := ListenSocket(cfg.Socket)
		if err != nil {
			return err
		}
		l = d.limitListener(l, "api socket", cfg.MaxConnections, true)
		d.listeners = append(d.listeners, boundListener{Listener: l, kind: connSocket})
		d.log.Info("listening", "socket", cfg.Socket)
	}
	if cfg.Listen != "" {
		l, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		useTLS := cfg.TLS.Cert != ""
		if useTLS {
			if err := d.certs.load(cfg.TLS); err != nil {
				_ = l.Close()
				return err
			}
		}
		keys := d.auth.Count()
		if d.store.Engine() == "etcd" {
			// A cluster node's listener is where the other nodes forward
			// session calls, with the cluster key (derived from the shared
			// cursor secret): a key exists before the first API key does.
			// Without this, every node of a new cluster with an address
			// beyond loopback (docs/cluster.md's drop-in) refused to start,
			// and no node was up to create the API key it asked for.
			keys++
		}
		if err := checkExposure(l.Addr(), keys, useTLS, cfg.Auth.AllowPlaintextTCP); err != nil {
			_ = l.Close()
			return err
		}
		l = d.limitListener(l, "api tcp", cfg.MaxConnections, !useTLS)
		d.listeners = append(d.listeners, boundListener{Listener: l, kind: connTCP, tls: useTLS})
		d.tcpAddr = l.Addr()
		d.log.Info("listening", "tcp", l.Addr().String(), "tls", useTLS, "api_keys", d.auth.Count())
	}
	return nil
}

// reloadKeys loads configured and stored API keys into the authenticator.
func (d *Daemon) reloadKeys() error {
	cfg := d.config()
	fromFile, err := readKeyFile(cfg.Auth.APIKeysFile)
	if err != nil {
		return err
	}
	var stored []store.APIKey
	if err := d.store.View(func(tx *store.Tx) error {
		var err error
		stored, err = tx.ListAPIKeys()
		return err
	}); err != nil {
		return err
	}
	d.auth.Load(append(append([]string(nil), cfg.Auth.APIKeys...), fromFile...), stored)
	return nil
}

func (d *Daemon) config() Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return d.cfg
}

// Reload applies the config values that can change safely while running:
// log level, API keys, the age identity file (re-read), run retention, the console's allowed hosts and the
// TLS key pair (re-read from tls.cert/tls.key). Others need a restart. A key pair that does not load
// leaves everything as it was.
func (d *Daemon) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if d.certs.cert.Load() != nil {
		if cfg.TLS.Cert == "" {
			return &ConfigError{Key: "tls.cert", Problem: "TLS cannot be turned off by a reload; restart the daemon"}
		}
		if err := d.certs.load(cfg.TLS); err != nil {
			return err
		}
	}
	d.cfgMu.Lock()
	d.cfg.Log.Level = cfg.Log.Level
	d.cfg.Auth = cfg.Auth
	d.cfg.Runs = cfg.Runs
	d.cfg.Webhooks = cfg.Webhooks
	d.cfg.DeploymentsDir = cfg.DeploymentsDir
	d.cfg.Console.AllowedHosts = cfg.Console.AllowedHosts
	d.cfgMu.Unlock()
	SetLogLevel(cfg.Log.Level)
	if err := d.hooks.Reload(cfg.Webhooks); err != nil {
		return err
	}
	if err := d.node.reload(cfg); err != nil {
		return err
	}
	if err := d.reloadKeys(); err != nil {
		return err
	}
	// A broken directory is logged and counted, not a failed reload: the
	// rest of the configuration still applies.
	d.applyDeploymentsDir(cfg.DeploymentsDir)
	// The identity file too: in a cluster, another node's `keys rotate`
	// wrote a new one, copied here (sealer.go). A file that does not open
	// every stored secret leaves the running identity, and fails the reload.
	if err := d.reloadIdentity(); err != nil {
		return err
	}
	d.log.Info("configuration reloaded", "log_level", cfg.Log.Level, "api_keys", d.auth.Count(),
		"retention_max_per_deployment", cfg.Runs.Retention.MaxPerDeployment, "retention_max_age", cfg.Runs.Retention.MaxAge.String(),
		"webhook_endpoints", len(cfg.Webhooks.Endpoints))
	return nil
}

// TCPAddr is the bound TCP address (useful with listen ":0"), or nil.
func (d *Daemon) TCPAddr() net.Addr { return d.tcpAddr }

// Ready is closed once the daemon serves.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run serves until ctx is done, then shuts down: tell systemd STOPPING,
// stop accepting requests, drain in-flight fires (bounded by the shutdown
// timeout), close the backend and the store.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.config()
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	schedDone := make(chan error, 1)
	d.schedulerRunning.Store(true)
	go func() {
		schedDone <- d.runScheduler(schedCtx)
		d.schedulerRunning.Store(false)
	}()

	servers := make([]*http.Server, 0, len(d.listeners))
	serveErr := make(chan error, len(d.listeners))
	for _, l := range d.listeners {
		srv := newHTTPServer(d.streams.wrap(d.rootHandler()), d.log, d.limits)
		srv.ConnContext = withConnKind(l.kind)
		// Event streams never go idle by themselves: end them as shutdown
		// begins so it waits only for ordinary requests (manual runs).
		srv.RegisterOnShutdown(d.streams.endAll)
		servers = append(servers, srv)
		go func(l boundListener) {
			var err error
			if l.tls {
				srv.TLSConfig = d.certs.serverConfig()
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}(l)
	}
	background, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() { d.pruneLoop(background) })
	// Deliveries stop as shutdown begins; an attempt cut short stays pending
	// on disk and is made again by the next process.
	// In a cluster only the leader delivers the shared outbox
	// (cluster_webhooks.go); each node delivers its own session file's.
	if d.store.Engine() != "etcd" {
		bg.Go(func() { _ = d.hooks.Run(background) })
	}
	bg.Go(func() { d.node.run(background) })      // issue 26: this node's session file's outbox
	bg.Go(func() { d.lostNodesLoop(background) }) // issue 26: the leader marks lost nodes' sessions
	bg.Go(func() { d.loadLoop(background) })      // issue 26: this node's load, for placement
	bg.Go(func() { d.watchdogLoop(background) })
	if d.disk != nil {
		diskTicker := time.NewTicker(diskCheckEvery)
		defer diskTicker.Stop()
		bg.Go(func() { d.disk.Run(background, diskTicker.C) })
	}

	close(d.ready)
	_ = sdNotify("READY=1\nSTATUS=serving")
	d.log.Info("sandbox0d ready")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		d.log.Error("listener failed", "error", runErr)
	}
	_ = sdNotify("STOPPING=1")
	d.log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String(), "fires_in_flight", d.firesInFlight())
	stopBackground()
	// One budget for the whole shutdown, store close included. Stop handing
	// out fires first, so no new fire starts while requests drain;
	// in-flight fires and requests then finish side by side, and the
	// backend's Close gets what is left (running local harnesses are
	// terminated and killed before it). All of that ends by the work
	// deadline, which keeps a reserve of the budget for closing the store
	// and exiting, so the process is gone within shutdown_timeout, below
	// the unit's TimeoutStopSec.
	stopSched()
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithDeadline(context.Background(), deadline.Add(-shutdownReserve(cfg.ShutdownTimeout)))
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if srv.Shutdown(shutdownCtx) != nil {
				// Requests still running at the deadline (a backup a client
				// stopped reading holds a store transaction) are cut, or
				// closing the store would wait for them.
				_ = srv.Close()
			}
		})
	}
	select {
	case <-schedDone:
	case <-shutdownCtx.Done():
		d.log.Warn("shutdown timeout reached with fires still in flight; their intents resolve at next start")
	}
	wg.Wait()
	if !waitUntil(shutdownCtx, bg.Wait) {
		d.log.Warn("background loops (retention, webhooks, watchdog) still busy at the shutdown deadline")
	}
	d.closeAll(shutdownCtx)
	d.closeStore(deadline)
	d.log.Info("stopped")
	return runErr
}

// pruneLoop applies run retention soon after start and then periodically.
func (d *Daemon) pruneLoop(ctx context.Context) {
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r := d.config().Runs.Retention
		n, err := d.svc.PruneRuns(ctx, deployments.Retention{MaxPerDeployment: r.MaxPerDeployment, MaxAge: r.MaxAge})
		if err != nil {
			d.log.Error("run retention failed", "error", err)
		} else if n > 0 {
			d.log.Info("pruned runs beyond retention", "runs", n)
		}
		d.pruneIdempotency(ctx)
		timer.Reset(r.Interval)
	}
}

// closeAll closes the listeners, the backend (bounded by ctx's deadline,
// the shutdown's work deadline) and the egress proxy; the store is closed
// apart (closeStore).
func (d *Daemon) closeAll(ctx context.Context) {
	for _, l := range d.listeners {
		_ = l.Close()
	}
	if d.backend != nil {
		if err := d.backend.Close(ctx); err != nil {
			d.log.Warn("session backend closed at the shutdown deadline", "error", err)
		}
	}
	if d.egress != nil {
		_ = d.egress.Close()
	}
}

// closeStore closes bbolt, waiting for its open transactions until the
// shutdown deadline at most. Past it the process goes on to exit with the
// store open: bbolt is crash-safe (a write transaction not committed is
// simply not there at the next start), and the budget is the operator's.
func (d *Daemon) closeStore(deadline time.Time) {
	if d.store == nil {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if !waitUntil(ctx, func() { _ = d.store.Close(); d.node.close() }) {
		d.log.Warn("the store was still busy at the shutdown deadline; exiting without waiting for it (bbolt is crash-safe)")
	}
}

// shutdownReserve is the part of the shutdown budget kept for closing the
// store and exiting after everything else stopped: a tenth, at most 1s.
func shutdownReserve(budget time.Duration) time.Duration {
	return min(budget/10, time.Second)
}

// waitUntil runs fn and waits for it until ctx is done; false when fn was
// still running then (it goes on in the background).
func waitUntil(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// ServerLimits bound what one client connection may cost.
type ServerLimits struct {
	ReadHeaderTimeout time.Duration // slowloris: headers must arrive quickly
	ReadTimeout       time.Duration // a whole request body
	IdleTimeout       time.Duration // keep-alive connections
	MaxHeaderBytes    int           // request line (with query) and headers
}

// DefaultServerLimits apply to every listener. WriteTimeout is left to the
// handlers because event streams are long-lived.
var DefaultServerLimits = ServerLimits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       60 * time.Second,
	IdleTimeout:       120 * time.Second,
	MaxHeaderBytes:    64 << 10,
}

// newHTTPServer sets every server timeout so slow or hostile clients cannot
// hold connections forever.
func newHTTPServer(h http.Handler, log *slog.Logger, limits ServerLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
