package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
)

// Options override parts of the wiring (tests and benchmarks).
type Options struct {
	// Backend replaces the configured session backend.
	Backend sessions.Backend
	// Now replaces the clock.
	Now func() time.Time
}

// Daemon is a wired sandbox0d instance.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	keyring *crypto.Keyring
	backend sessions.Backend
	svc     *deployments.Service
	sched   *deployments.Scheduler
	echo    *echo.Echo

	listeners []net.Listener
	tcpAddr   net.Addr
	ready     chan struct{}
}

// New opens the store, loads the keyring, builds the backend, resolves
// leftover run intents, loads the scheduler and binds the listeners. It does
// not serve yet: Run does.
func New(cfg Config, log *slog.Logger, opts Options) (_ *Daemon, err error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Daemon{cfg: cfg, log: log, ready: make(chan struct{})}
	defer func() {
		if err != nil {
			d.closeAll()
		}
	}()
	dbPath := filepath.Join(cfg.DataDir, store.FileName)
	if d.store, err = store.Open(dbPath, store.Options{}); err != nil {
		return nil, err
	}
	log.Info("store open", "path", dbPath)

	identityPath, fromCredential := crypto.ResolveIdentityPath(cfg.DataDir, cfg.IdentityFile)
	if d.keyring, err = crypto.StartupKeyring(identityPath, fromCredential, deployments.SealedSecrets(d.store), log); err != nil {
		return nil, err
	}

	d.backend = opts.Backend
	if d.backend == nil {
		if d.backend, err = buildBackend(cfg, d.store, log); err != nil {
			return nil, err
		}
	}
	log.Info("session backend ready", "backend", d.backend.Name())

	d.svc = deployments.NewService(deployments.Config{
		Store: d.store, Backend: d.backend, Sealer: d.keyring, Now: opts.Now, Logger: log,
	})
	if n, err := d.svc.RecoverIntents(); err != nil {
		return nil, fmt.Errorf("recover run intents: %w", err)
	} else if n > 0 {
		log.Warn("resolved run intents left by a previous process as unknown_error runs", "runs", n)
	}
	d.sched = d.svc.AttachScheduler(deployments.SchedulerConfig{
		Workers:      cfg.Schedule.Workers,
		Jitter:       cfg.Schedule.Jitter,
		MisfireGrace: cfg.Schedule.MisfireGrace,
	})
	stats, err := d.sched.Load()
	if err != nil {
		return nil, fmt.Errorf("load schedules: %w", err)
	}
	log.Info("scheduler loaded", "scheduled", stats.Scheduled, "misfires_run", stats.MisfiresRun, "misfires_skipped", stats.MisfiresSkipped)

	d.echo = httpapi.New(httpapi.Config{
		Service:  d.svc,
		Store:    d.store,
		Sessions: httpapi.SessionHandler(d.backend),
		Logger:   log,
	})

	if cfg.Socket != "" {
		l, err := ListenSocket(cfg.Socket)
		if err != nil {
			return nil, err
		}
		d.listeners = append(d.listeners, l)
		log.Info("listening", "socket", cfg.Socket)
	}
	if cfg.Listen != "" {
		l, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		d.listeners = append(d.listeners, l)
		d.tcpAddr = l.Addr()
		log.Info("listening", "tcp", l.Addr().String())
	}
	return d, nil
}

// TCPAddr is the bound TCP address (useful with listen ":0"), or nil.
func (d *Daemon) TCPAddr() net.Addr { return d.tcpAddr }

// Ready is closed once the daemon serves.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Service exposes the domain service (tests, admin commands).
func (d *Daemon) Service() *deployments.Service { return d.svc }

// Store exposes the store (tests, admin commands).
func (d *Daemon) Store() *store.Store { return d.store }

// Handler is the HTTP handler the listeners serve.
func (d *Daemon) Handler() http.Handler { return d.echo }

// Run serves until ctx is done, then shuts down: stop accepting requests,
// drain in-flight fires, close the backend and the store.
func (d *Daemon) Run(ctx context.Context) error {
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	schedDone := make(chan error, 1)
	go func() { schedDone <- d.sched.Run(schedCtx) }()

	servers := make([]*http.Server, 0, len(d.listeners))
	serveErr := make(chan error, len(d.listeners))
	for _, l := range d.listeners {
		srv := newHTTPServer(d.echo, d.log)
		servers = append(servers, srv)
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}(l)
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
	d.log.Info("shutting down", "timeout", d.cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func(srv *http.Server) {
			defer wg.Done()
			_ = srv.Shutdown(shutdownCtx)
		}(srv)
	}
	wg.Wait()
	stopSched()
	select {
	case <-schedDone:
	case <-shutdownCtx.Done():
		d.log.Warn("shutdown timeout reached with fires still in flight; their intents resolve at next start")
	}
	d.closeAll()
	d.log.Info("stopped")
	return runErr
}

func (d *Daemon) closeAll() {
	for _, l := range d.listeners {
		_ = l.Close()
	}
	if c, ok := d.backend.(interface{ Close(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = c.Close(ctx)
		cancel()
	}
	if d.store != nil {
		_ = d.store.Close()
	}
}

// newHTTPServer sets every server timeout so slow or hostile clients cannot
// hold connections forever. WriteTimeout is left to the handlers because
// event streams are long-lived.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
