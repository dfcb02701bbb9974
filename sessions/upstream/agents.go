package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/sandbox0/sandbox0d/sessions"
)

// Lookups answer an interactive create/update of a deployment, so they are
// not retried: one attempt with upstream.request_timeout. An answer about
// the id (404, or 400/422: the upstream rejected it) is a client error
// naming the field; 401/403 means the upstream refused the daemon's key, a
// configuration problem (sessions.ErrRefused, not retried); anything else
// (a network error, a timeout, 5xx, 429, an unreadable body) wraps
// sessions.ErrUnavailable, which the API turns into a 503.

// unavailableError is a lookup that got no usable answer.
type unavailableError struct{ detail string }

func (e *unavailableError) Error() string {
	return "the session backend could not be reached: " + e.detail
}

func (e *unavailableError) Unwrap() error { return sessions.ErrUnavailable }

// refusedError is a lookup the upstream refused for the daemon's key.
type refusedError struct{ detail string }

func (e *refusedError) Error() string {
	return "the upstream refused the daemon's credentials (check upstream.api_key): " + e.detail
}

func (e *refusedError) Unwrap() error { return sessions.ErrRefused }

// lookupConcurrency bounds the parallel lookups of one CheckReferences.
const lookupConcurrency = 8

// ResolveAgent pins an agent: version 0 means the latest version. The
// agent (and the version) must exist and the agent must not be archived. A
// version asked for by number is that version's snapshot, which does not
// say whether the agent was archived since, so the agent itself is looked
// up too.
func (b *Backend) ResolveAgent(ctx context.Context, agentID string, version int64) (sessions.AgentRef, error) {
	if agentID == "" || version < 0 {
		return sessions.AgentRef{}, &sessions.NotFoundError{Field: "agent", ID: agentID}
	}
	obj, err := b.lookup(ctx, "agent", agentID, agentQuery(version), pathOf("agents", agentID), "")
	if err != nil {
		var nf *sessions.NotFoundError
		if errors.As(err, &nf) && version > 0 {
			return sessions.AgentRef{}, b.missingAgentVersion(ctx, agentID, version)
		}
		return sessions.AgentRef{}, err
	}
	if version > 0 && !obj.archived() {
		if obj, err = b.lookup(ctx, "agent", agentID, nil, pathOf("agents", agentID), ""); err != nil {
			return sessions.AgentRef{}, err
		}
	}
	if obj.archived() {
		return sessions.AgentRef{}, &sessions.NotFoundError{Field: "agent", ID: agentID, Archived: true}
	}
	if version == 0 {
		version = obj.Version
	}
	if version < 1 {
		return sessions.AgentRef{}, &unavailableError{detail: fmt.Sprintf("GET %s answered without a version for agent %q", pathOf("agents", agentID), agentID)}
	}
	return sessions.AgentRef{ID: agentID, Version: version}, nil
}

// missingAgentVersion tells "no such version" from "no such agent".
func (b *Backend) missingAgentVersion(ctx context.Context, agentID string, version int64) error {
	if _, err := b.lookup(ctx, "agent", agentID, nil, pathOf("agents", agentID), ""); err != nil {
		return err
	}
	return &sessions.NotFoundError{Field: "agent.version", ID: strconv.FormatInt(version, 10)}
}

func agentQuery(version int64) url.Values {
	if version == 0 {
		return nil
	}
	return url.Values{"version": {strconv.FormatInt(version, 10)}}
}

// CheckReferences checks that the environment, the vaults, the files and
// the memory stores exist and are not archived, and, when refs.Agent.ID is set, the agent
// version too (leave it empty when ResolveAgent already did). Lookups run
// in parallel; the first problem in field order is returned.
func (b *Backend) CheckReferences(ctx context.Context, refs sessions.References) error {
	type check struct {
		run func(ctx context.Context) error
	}
	var checks []check
	if refs.Agent.ID != "" {
		checks = append(checks, check{run: func(ctx context.Context) error {
			_, err := b.ResolveAgent(ctx, refs.Agent.ID, refs.Agent.Version)
			return err
		}})
	}
	object := func(field, id, path, beta string) check {
		return check{run: func(ctx context.Context) error {
			obj, err := b.lookup(ctx, field, id, nil, path, beta)
			if err != nil {
				return err
			}
			if obj.archived() {
				return &sessions.NotFoundError{Field: field, ID: id, Archived: true}
			}
			return nil
		}}
	}
	if refs.EnvironmentID != "" {
		checks = append(checks, object("environment_id", refs.EnvironmentID, pathOf("environments", refs.EnvironmentID), ""))
	}
	for i, id := range refs.VaultIDs {
		checks = append(checks, object(fmt.Sprintf("vault_ids[%d]", i), id, pathOf("vaults", id), ""))
	}
	for _, id := range refs.FileIDs {
		checks = append(checks, object("file_id", id, pathOf("files", id), filesBeta))
	}
	for _, id := range refs.MemoryStoreIDs {
		checks = append(checks, object("memory_store_id", id, pathOf("memory_stores", id), memoryStoresBeta))
	}

	errs := make([]error, len(checks))
	limit := make(chan struct{}, lookupConcurrency)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			errs[i] = c.run(ctx)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lookedUp is the part of an agent, environment, vault or file a lookup reads.
type lookedUp struct {
	Version    int64           `json:"version"`
	ArchivedAt json.RawMessage `json:"archived_at"`
}

func (o lookedUp) archived() bool {
	v := bytes.TrimSpace(o.ArchivedAt)
	return len(v) > 0 && string(v) != "null" && string(v) != `""`
}

// lookup GETs one object named by field/id and classifies the answer.
func (b *Backend) lookup(ctx context.Context, field, id string, query url.Values, path, beta string) (lookedUp, error) {
	var obj lookedUp
	op := operation{redact: newRedactor(b.apiKey)}
	c := call{method: http.MethodGet, path: path, query: query, beta: beta}
	a, err := b.send(ctx, c)
	if err != nil {
		return obj, &unavailableError{detail: op.failure(c, nil, err).describe()}
	}
	if a.ok() {
		if err := json.Unmarshal(a.body, &obj); err != nil {
			return obj, &unavailableError{detail: fmt.Sprintf("%s answered %d with a body that is not JSON (request-id %s)", c, a.status, a.requestID)}
		}
		return obj, nil
	}
	// Only a failed lookup pays for classifying its answer (redaction and
	// the subject regexps over the body): it was 15% of a create's CPU when
	// every successful lookup did it too.
	f := op.failure(c, a, nil)
	switch {
	case a.status == http.StatusNotFound:
		return obj, &sessions.NotFoundError{Field: field, ID: id}
	case a.status == http.StatusBadRequest || a.status == http.StatusUnprocessableEntity:
		// The upstream rejected the lookup of this id: a permanent answer
		// about the request, said in the upstream's words.
		return obj, &sessions.FieldError{Field: field, Message: fmt.Sprintf("the upstream rejected %q: %s", id, f.describe())}
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return obj, &refusedError{detail: f.describe()}
	}
	return obj, &unavailableError{detail: f.describe()}
}
