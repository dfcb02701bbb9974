package daemon

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
	"github.com/sandbox0/sandbox0d/store"
)

// buildBackend creates the configured session backend.
// The egress proxy of limited networks comes back with a local backend (nil
// otherwise); the daemon exports its counts and closes it.
//
// st is where local sessions live (this node's own file in a cluster);
// catalog is the namespace of the agents, environments, vaults and
// credentials created through the API, in the daemon's store (shared by
// every node in a cluster).
func buildBackend(cfg Config, st *store.Store, events local.EventSink, disk *diskspace.Guard, sealer local.Sealer, log *slog.Logger, index, catalog *store.Namespace) (sessions.Backend, *egress.Proxy, error) {
	switch cfg.Backend {
	case "none":
		return sessions.Unconfigured{}, nil, nil
	case "upstream":
		b, err := upstream.New(upstream.Config{
			URL:            cfg.Upstream.URL,
			APIKey:         cfg.Upstream.APIKey,
			APIKeyFile:     cfg.Upstream.APIKeyFile,
			RequestTimeout: cfg.Upstream.RequestTimeout,
			RetryWindow:    cfg.Upstream.RetryWindow,
			MaxConcurrency: cfg.Upstream.MaxConcurrency,
			MaxProxyBody:   cfg.Upstream.MaxProxyBody,
			AllowPlaintext: cfg.Upstream.AllowPlaintext,
			Logger:         log,
		})
		if err != nil {
			return nil, nil, err // a *ConfigError naming its key
		}
		return b, nil, nil
	case "local":
		lc := localConfig(cfg, log)
		lc.Events = events
		lc.Sealer = sealer
		if index != nil { // issue 26: cluster mode
			lc.Index, lc.Node = index, cfg.Cluster.NodeName
		}
		lc.Catalog = catalog
		if disk != nil { // a nil *Guard in the interface would not be nil
			lc.Disk = disk
		}
		maxConns := cfg.Local.Egress.MaxConnectionsPerSession
		if maxConns == 0 {
			maxConns = -1 // the config's 0 is no cap; egress's 0 is its default
		}
		// The CA with which the proxy terminates TLS for hosts a projected
		// credential is scoped to; its key stays in the data dir, which no
		// sandbox sees.
		ca, err := egress.LoadCA(filepath.Join(cfg.DataDir, egressCADir))
		if err != nil {
			return nil, nil, fmt.Errorf("data_dir: %w", err)
		}
		roots, err := upstreamRoots(cfg.Local.Egress.UpstreamCAFile)
		if err != nil {
			return nil, nil, err
		}
		proxy, err := egress.New(egress.Config{Logger: log.With("component", "egress"),
			MaxConnectionsPerSession: maxConns, HeaderTimeout: cfg.Local.Egress.HeaderTimeout,
			CA: ca, UpstreamRoots: roots})
		if err != nil {
			return nil, nil, err
		}
		lc.Projector = proxy
		sb, err := buildSandbox(cfg, proxy, log)
		if err != nil {
			_ = proxy.Close()
			return nil, nil, fmt.Errorf("config %w", err)
		}
		lc.Sandbox = sb
		ns, err := st.Namespace(store.NamespaceLocal)
		if err != nil {
			_ = proxy.Close()
			return nil, nil, err
		}
		b, err := local.New(ns, lc)
		if err != nil {
			_ = proxy.Close()
			return nil, nil, err // *ConfigErrors naming their keys
		}
		return b, proxy, nil
	}
	return nil, nil, fmt.Errorf("config backend: unknown backend %q", cfg.Backend)
}

// localConfig maps the daemon's config keys onto the local backend. The
// workspaces default to a directory inside the data dir.
func localConfig(cfg Config, log *slog.Logger) local.Config {
	lc := local.Config{
		FilesDir:              cfg.Local.FilesDir,
		WorkspaceDir:          cfg.Local.WorkspaceDir,
		MaxConcurrentSessions: cfg.Local.MaxConcurrentSessions,
		WorkspaceRetention:    cfg.Local.WorkspaceRetention,
		SessionRetention:      cfg.Local.SessionRetention,
		GitBinary:             cfg.Local.GitBinary,
		ClaudeBinary:          cfg.Local.ClaudeBinary,
		ClaudeEnv:             cfg.Local.ClaudeEnv,
		KillGracePeriod:       cfg.Local.KillGracePeriod,
		CredentialsDir:        cfg.Local.CredentialsDir,
		Logger:                log,
	}
	if lc.WorkspaceDir == "" {
		lc.WorkspaceDir = filepath.Join(cfg.DataDir, "workspaces")
	}
	for _, a := range cfg.Local.Agents {
		// Relative paths of the config file are already next to it
		// (resolveConfigPaths).
		command := append([]string(nil), a.Command...)
		agent := local.Agent{ID: a.ID, Version: a.Version, Command: command, Env: a.Env, Model: a.Model, System: a.System,
			Name: a.Name, Description: a.Description}
		agent.ReadOnly = append([]string(nil), a.ReadOnly...)
		if a.Harness == "claude-code" {
			agent.ClaudeCode = &claudecode.Config{Model: a.Model, System: a.System, AppendSystem: a.AppendSystem,
				AllowedTools: a.AllowedTools, DisallowedTools: a.DisallowedTools,
				MCPServers: a.MCPServers, MaxTurns: a.MaxTurns,
				PermissionMode: a.PermissionMode, Binary: a.ClaudeBinary}
		}
		lc.Agents = append(lc.Agents, agent)
	}
	for _, e := range cfg.Local.Environments {
		memory, _ := parseSize(e.Limits.Memory) // Validate has checked it
		lc.Environments = append(lc.Environments, local.Environment{ID: e.ID, Env: e.Env, Timeout: e.Timeout,
			MaxOutputBytes: e.MaxOutputBytes, MaxEvents: e.MaxEvents, Networking: local.Networking{
				Type:                 e.Networking.Type,
				AllowedHosts:         e.Networking.AllowedHosts,
				AllowPackageManagers: e.Networking.AllowPackageManagers,
				AllowMCPServers:      e.Networking.AllowMCPServers,
			}, Limits: local.Limits{Memory: memory, Processes: e.Limits.Processes, CPU: e.Limits.CPU,
				OpenFiles: e.Limits.OpenFiles, WorkspaceBytes: e.Limits.WorkspaceBytes}})
	}
	for _, v := range cfg.Local.Vaults {
		lc.Vaults = append(lc.Vaults, local.Vault{ID: v.ID, File: v.File, Credential: v.Credential,
			Hosts: v.Hosts, Inject: v.Inject, Raw: v.Project != nil && !*v.Project})
	}
	return lc
}

// buildSandbox builds the sandbox local.sandbox asks for. Everything of the
// daemon's own (data dir, sockets, key and config files, credentials) is
// hidden from sandboxed harnesses even where it lies under a directory they
// are given.
func buildSandbox(cfg Config, proxy *egress.Proxy, log *slog.Logger) (sandbox.Sandbox, error) {
	hidden := []string{cfg.DataDir, cfg.Socket, cfg.IdentityFile, cfg.ConfigFile, cfg.Local.CredentialsDir,
		os.Getenv("CREDENTIALS_DIRECTORY"), cfg.Upstream.APIKeyFile, cfg.Auth.APIKeysFile, cfg.TLS.Key,
		cfg.Local.FilesDir, cfg.Local.WorkspaceDir} // the session's own workspace is bound on its own
	for _, v := range cfg.Local.Vaults {
		hidden = append(hidden, v.File)
	}
	// Outside the view already (the allow-list); masked too should an
	// agent's read_only name a directory holding one.
	for _, e := range cfg.Webhooks.Endpoints {
		hidden = append(hidden, e.SigningKeyFile)
	}
	sc := sandbox.Config{Mode: sandbox.Mode(cfg.Local.Sandbox), Hidden: hidden, Logger: log, ProbeDir: cfg.DataDir}
	// The daemon's own binary is the forwarder inside limited sandboxes.
	if exe, err := os.Executable(); err == nil {
		sc.Egress, sc.Forwarder = proxy, []string{exe, sandbox.ForwarderCommand}
	}
	sb, err := sandbox.New(sc)
	if err == nil {
		log.Info("local sessions sandbox ready", "sandbox", sb.Name())
	}
	return sb, err
}

// egressCADir is the egress proxy's CA inside the data dir.
const egressCADir = "egress-ca"

// upstreamRoots are the roots intercepted hosts are verified against: the
// system's, plus local.egress.upstream_ca_file when set.
func upstreamRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config local.egress.upstream_ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("config local.egress.upstream_ca_file: %s holds no PEM certificate", file)
	}
	return pool, nil
}
