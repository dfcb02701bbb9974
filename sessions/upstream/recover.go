package upstream

import (
	"context"
	"fmt"

	"github.com/sandbox0/sandbox0d/sessions"
)

// SessionOfRun implements sessions.RunSessionFinder for a run whose writer
// died between its intent and its record (a daemon restart; in a cluster,
// a node whose lease expired). It only looks: the agent's sessions created
// since the run started (less the clock skew) are listed for the run id in
// their metadata, as before a resend (dedupe.go), and a session found is
// the run's only when its initial events arrived too. Nothing is ever sent
// again: whether an upstream honours Idempotency-Key cannot be known from
// here, so a resend could create a second session.
//
// A run whose session is not found ("", nil) records unknown_error as
// before; so does one whose deployment had no room for the metadata keys
// (create.go), since its session cannot be told from the others.
func (b *Backend) SessionOfRun(ctx context.Context, run sessions.RunRef) (string, error) {
	op := operation{
		subjects: subjects{}.with(run.Agent.ID, aboutAgent),
		redact:   newRedactor(b.apiKey),
		logAttrs: []any{"deployment_id", run.DeploymentID, "run_id", run.RunID},
	}
	found, err := b.lookupRunSession(ctx, run.Agent.ID, run.RunID, run.Started, op)
	if err != nil || found == nil {
		return "", err
	}
	// The initial events always hold a user.message (the deployment
	// contract requires one) and are sent in one request after the session
	// exists; nobody else knows the session's id, so a user.message in it is
	// ours. Without one the writer died in between: the session idles
	// without a prompt and is not the run's success.
	delivered, err := b.hasEventOfType(ctx, found.id, []string{"user.message"}, op)
	if err != nil {
		return "", fmt.Errorf("session %s was created for this run; whether its initial events arrived is unknown: %w", found.id, err)
	}
	if !delivered {
		return "", fmt.Errorf("session %s was created for this run but holds no initial events; it was left as it is", found.id)
	}
	b.log.Info("resolved an interrupted run to the session it created", append(op.logAttrs, "session_id", found.id)...)
	return found.id, nil
}

var _ sessions.RunSessionFinder = (*Backend)(nil)
