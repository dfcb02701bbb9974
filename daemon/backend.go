package daemon

import (
	"fmt"
	"log/slog"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
)

// buildBackend creates the configured session backend.
func buildBackend(cfg Config, st *store.Store, log *slog.Logger) (sessions.Backend, error) {
	switch cfg.Backend {
	case "none":
		return sessions.Unconfigured{}, nil
	}
	return nil, fmt.Errorf("config backend: %q is not available yet", cfg.Backend)
}
