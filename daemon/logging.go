package daemon

import (
	"io"
	"log/slog"
)

// LogLevel is the process log level; SIGHUP changes it without a restart.
var LogLevel = new(slog.LevelVar)

// SetLogLevel applies a config level name.
func SetLogLevel(name string) {
	switch name {
	case "debug":
		LogLevel.Set(slog.LevelDebug)
	case "warn":
		LogLevel.Set(slog.LevelWarn)
	case "error":
		LogLevel.Set(slog.LevelError)
	default:
		LogLevel.Set(slog.LevelInfo)
	}
}

// NewLogger builds the structured logger from config.
func NewLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	SetLogLevel(cfg.Level)
	opts := &slog.HandlerOptions{Level: LogLevel}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
