package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// Session metadata keys that name the deployment run a session belongs to.
// They are a convenience for people browsing the upstream, never a
// requirement: they are added only when the deployment's own metadata
// leaves room under the upstream's limit of 16 pairs, so a deployment with
// 15 or 16 pairs (the documented maximum) still runs. Sessions are tracked
// by the run records (run → session id) and deduplicated by the
// Idempotency-Key; the keys only add the list-lookup guard of dedupe.go.
const (
	MetadataDeploymentID = "sandbox0d.deployment_id"
	MetadataRunID        = "sandbox0d.deployment_run_id"
	maxSessionMetadata   = 16
)

// CreateSession creates the run's session and delivers its initial events.
// It waits for a creation slot first (upstream.max_concurrency), honouring
// ctx. On failure it returns a *sessions.RunError; when the session was
// created but the events could not be delivered, it returns the session id
// together with the *sessions.RunError.
func (b *Backend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	if err := checkCreateRequest(req); err != nil {
		return "", err
	}
	release, err := b.acquireSlot(ctx)
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: "session creation was interrupted before it started: " + err.Error()}
	}
	defer release()

	op := operationFor(req, b.apiKey)
	body, tagged, err := createSessionBody(req)
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrSessionCreationRejected, Message: err.Error()}
	}
	create := call{
		method:         http.MethodPost,
		path:           pathOf("sessions"),
		body:           body,
		idempotencyKey: "sandbox0d-" + req.RunID + "-session",
	}
	started := time.Now()
	a, rerr := b.withRetries(ctx, op, func(ctx context.Context, mayBeApplied bool) (call, *answer, error) {
		if mayBeApplied && tagged {
			if found, ok := b.findRunSession(ctx, req, started, op); ok {
				return create, found, nil
			}
		}
		a, err := b.send(ctx, create)
		return create, a, err
	})
	if rerr != nil {
		return "", rerr
	}
	sessionID, err := sessionIDOf(a.body)
	if err != nil {
		return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: fmt.Sprintf(
			"%s answered %d (request-id %s) but %v; a session may exist upstream without being recorded",
			create, a.status, a.requestID, err)}
	}
	b.log.Info("session created", append(op.logAttrs, "session_id", sessionID, "request_id", a.requestID)...)
	if rerr := b.deliverEvents(ctx, req, sessionID, op); rerr != nil {
		// A run records a session or an error, never both: the half-started
		// session is named in the error and archived so it does not idle.
		b.archiveSession(ctx, sessionID, op)
		return "", rerr
	}
	return sessionID, nil
}

// archiveSession retires a session whose initial events were not
// delivered. Best effort: one attempt, the outcome is logged.
func (b *Backend) archiveSession(ctx context.Context, sessionID string, op operation) {
	c := call{method: http.MethodPost, path: pathOf("sessions", sessionID, "archive"), body: []byte("{}")}
	a, err := b.send(context.WithoutCancel(ctx), c)
	if err != nil || !a.ok() {
		b.log.Warn("could not archive the session whose initial events were not delivered",
			append(op.logAttrs, "session_id", sessionID, "error", op.failure(c, a, err).describe())...)
		return
	}
	b.log.Info("archived the session whose initial events were not delivered", append(op.logAttrs, "session_id", sessionID)...)
}

// checkCreateRequest refuses a snapshot the pipeline should never build.
func checkCreateRequest(req sessions.CreateRequest) error {
	var problem string
	switch {
	case req.DeploymentID == "" || req.RunID == "":
		problem = "the request does not name its deployment and run"
	case req.Agent.ID == "" || req.Agent.Version < 1:
		problem = fmt.Sprintf("agent %q is not pinned to a version (got %d)", req.Agent.ID, req.Agent.Version)
	case req.EnvironmentID == "":
		problem = "environment_id is empty"
	}
	if problem == "" {
		return nil
	}
	return &sessions.RunError{Type: sessions.ErrSessionCreationRejected, Message: "not sent to the upstream: " + problem}
}

// operationFor collects the ids a creation sends (for classification) and
// its secrets (for redaction).
func operationFor(req sessions.CreateRequest, apiKey string) operation {
	subj := subjects{}.
		with(req.EnvironmentID, aboutEnvironment).
		with(req.Agent.ID, aboutAgent)
	secrets := []string{apiKey}
	for _, id := range req.VaultIDs {
		subj = subj.with(id, aboutVault)
	}
	for _, r := range req.Resources {
		subj = subj.with(r.FileID, aboutFile).
			with(r.MemoryStoreID, aboutMemoryStore).
			with(r.URL, aboutRepository)
		secrets = append(secrets, r.AuthorizationToken)
	}
	return operation{
		subjects: subj,
		redact:   newRedactor(secrets...),
		logAttrs: []any{"deployment_id", req.DeploymentID, "run_id", req.RunID},
	}
}

type agentParam struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type createSessionParams struct {
	Agent         agentParam          `json:"agent"`
	EnvironmentID string              `json:"environment_id"`
	Resources     []sessions.Resource `json:"resources,omitempty"`
	VaultIDs      []string            `json:"vault_ids,omitempty"`
	Metadata      map[string]string   `json:"metadata"`
	Budget        json.RawMessage     `json:"budget,omitempty"`
}

// createSessionBody renders the POST /v1/sessions body. It is the only
// place a decrypted token is serialized, and the bytes live only as long
// as this creation. tagged reports whether the run's metadata keys fit.
func createSessionBody(req sessions.CreateRequest) (body []byte, tagged bool, err error) {
	metadata := make(map[string]string, len(req.Metadata)+2)
	for k, v := range req.Metadata {
		metadata[k] = v
	}
	extra := 0
	for _, k := range []string{MetadataDeploymentID, MetadataRunID} {
		if _, taken := metadata[k]; !taken {
			extra++
		}
	}
	if len(metadata)+extra <= maxSessionMetadata {
		metadata[MetadataDeploymentID] = req.DeploymentID
		metadata[MetadataRunID] = req.RunID
		tagged = true
	}
	params := createSessionParams{
		Agent:         agentParam{Type: "agent", ID: req.Agent.ID, Version: req.Agent.Version},
		EnvironmentID: req.EnvironmentID,
		VaultIDs:      req.VaultIDs,
		Metadata:      metadata,
		Budget:        req.Budget,
	}
	for i, r := range req.Resources {
		wr, err := wireResource(r)
		if err != nil {
			return nil, false, fmt.Errorf("resources[%d]: %w", i, err)
		}
		params.Resources = append(params.Resources, wr)
	}
	body, err = json.Marshal(params)
	return body, tagged, err
}

// wireResource keeps only the fields that belong to the resource's type,
// so the upstream never sees a stray field it would refuse.
func wireResource(r sessions.Resource) (sessions.Resource, error) {
	switch r.Type {
	case "github_repository":
		return sessions.Resource{Type: r.Type, URL: r.URL, Checkout: r.Checkout, MountPath: r.MountPath, AuthorizationToken: r.AuthorizationToken}, nil
	case "file":
		return sessions.Resource{Type: r.Type, FileID: r.FileID, MountPath: r.MountPath}, nil
	case "memory_store":
		return sessions.Resource{Type: r.Type, MemoryStoreID: r.MemoryStoreID, Access: r.Access, Instructions: r.Instructions}, nil
	}
	return sessions.Resource{}, fmt.Errorf("unknown resource type %q", r.Type)
}

func sessionIDOf(body []byte) (string, error) {
	// A session object is several kilobytes and only its id is needed: the
	// members are read one by one and the walk stops at the id (the first
	// member in the API's answers) instead of decoding the whole object.
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", errors.New("its body is not a session (not a JSON object)")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("its body is not a session: %w", err)
		}
		if key != "id" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", fmt.Errorf("its body is not a session: %w", err)
			}
			continue
		}
		var id string
		if err := dec.Decode(&id); err != nil {
			return "", fmt.Errorf("its body is not a session: id: %w", err)
		}
		if id == "" {
			break
		}
		return id, nil
	}
	return "", errors.New("its body has no session id")
}

// deliverEvents posts the initial events in one request, in order.
func (b *Backend) deliverEvents(ctx context.Context, req sessions.CreateRequest, sessionID string, op operation) *sessions.RunError {
	if len(req.InitialEvents) == 0 {
		return nil
	}
	body, err := json.Marshal(struct {
		Events []json.RawMessage `json:"events"`
	}{req.InitialEvents})
	if err != nil {
		return &sessions.RunError{Type: sessions.ErrSessionCreationRejected, Message: fmt.Sprintf(
			"session %s was created but its initial events could not be encoded: %v", sessionID, err)}
	}
	send := call{
		method:         http.MethodPost,
		path:           pathOf("sessions", sessionID, "events"),
		body:           body,
		idempotencyKey: "sandbox0d-" + req.RunID + "-events",
	}
	op.subjects = op.subjects.with(sessionID, aboutSession)
	_, rerr := b.withRetries(ctx, op, func(ctx context.Context, mayBeApplied bool) (call, *answer, error) {
		if mayBeApplied && b.eventsDelivered(ctx, sessionID, req, op) {
			return send, &answer{status: http.StatusOK}, nil
		}
		a, err := b.send(ctx, send)
		return send, a, err
	})
	if rerr != nil {
		rerr.Message = fmt.Sprintf("session %s was created but its initial events were not delivered: %s", sessionID, rerr.Message)
		return rerr
	}
	return nil
}
