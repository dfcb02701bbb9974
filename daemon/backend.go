package daemon

import (
	"fmt"
	"log/slog"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
	"github.com/sandbox0/sandbox0d/store"
)

// buildBackend creates the configured session backend.
func buildBackend(cfg Config, st *store.Store, log *slog.Logger) (sessions.Backend, error) {
	switch cfg.Backend {
	case "none":
		return sessions.Unconfigured{}, nil
	case "upstream":
		b, err := upstream.New(upstream.Config{
			URL:            cfg.Upstream.URL,
			APIKey:         cfg.Upstream.APIKey,
			APIKeyFile:     cfg.Upstream.APIKeyFile,
			RequestTimeout: cfg.Upstream.RequestTimeout,
			RetryWindow:    cfg.Upstream.RetryWindow,
			MaxConcurrency: cfg.Upstream.MaxConcurrency,
			Logger:         log,
		})
		if err != nil {
			return nil, fmt.Errorf("config %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("config backend: %q is not available yet", cfg.Backend)
}
