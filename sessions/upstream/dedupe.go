package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// POST /v1/sessions and POST /v1/sessions/{id}/events are not idempotent:
// when an attempt times out, loses its connection after the request was
// sent, or gets a 5xx or 409, the upstream may have applied it anyway, and
// a plain resend would create a second session (or deliver the events
// twice). Two independent guards prevent that:
//
//  1. Every attempt of one run carries the same Idempotency-Key header
//     (sandbox0d-<run id>-session / -events). An upstream that honours it
//     (the fake does) answers a repeat with the first result.
//  2. An upstream that ignores the header is asked first: before resending
//     after such an ambiguous failure, the backend lists the agent's recent
//     sessions (agent_id, created_at[gte] = first attempt − 10 min for clock
//     skew, ≤ 10 pages of 100) looking for the run's
//     sandbox0d.deployment_run_id metadata, and adopts the session it
//     finds (only when the keys were sent: a deployment with 15-16
//     metadata pairs leaves no room for them and relies on guard 1); for events it lists the new session's first events and treats
//     any event of an initial-event type as delivered (nobody else knows
//     the session id yet).
//
// A lookup that fails is logged and the resend goes ahead, guarded by 1.
// Remaining gap: an upstream that ignores the key AND has not yet made the
// first session visible to lists when the lookup runs can still end up
// with two sessions; the run records one of them.

const (
	lookupClockSkew = 10 * time.Minute
	lookupPageSize  = 100
	lookupMaxPages  = 10
)

// findRunSession looks for the session an earlier attempt of this run may
// have created, and returns it as a successful creation answer.
func (b *Backend) findRunSession(ctx context.Context, req sessions.CreateRequest, firstAttempt time.Time, op operation) (*answer, bool) {
	found, err := b.lookupRunSession(ctx, req.Agent.ID, req.RunID, firstAttempt, op)
	if err != nil {
		b.log.Warn("could not look for a session created by an earlier attempt; resending", append(op.logAttrs, "error", err.Error())...)
		return nil, false
	}
	if found == nil {
		return nil, false
	}
	b.log.Info("adopting the session an earlier attempt created", append(op.logAttrs, "session_id", found.id)...)
	return &answer{status: http.StatusOK, body: found.raw, requestID: found.requestID}, true
}

// listedSession is a session a list answer holds.
type listedSession struct {
	id        string
	raw       json.RawMessage
	requestID string
}

// lookupRunSession lists the agent's sessions created since firstAttempt
// (less the clock skew), newest first, and returns the one whose
// MetadataRunID is runID; nil when none is, an error when the list failed.
// Shared by the create path (before a resend) and SessionOfRun (a dead
// writer's intent).
func (b *Backend) lookupRunSession(ctx context.Context, agentID, runID string, firstAttempt time.Time, op operation) (*listedSession, error) {
	q := url.Values{
		"agent_id":        {agentID},
		"created_at[gte]": {firstAttempt.Add(-lookupClockSkew).UTC().Format(time.RFC3339)},
		"limit":           {strconv.Itoa(lookupPageSize)},
	}
	for range lookupMaxPages {
		list := call{method: http.MethodGet, path: pathOf("sessions"), query: q}
		a, err := b.send(ctx, list)
		if err != nil || !a.ok() {
			return nil, errors.New(op.failure(list, a, err).describe())
		}
		var page struct {
			Data     []json.RawMessage `json:"data"`
			NextPage *string           `json:"next_page"`
		}
		if err := json.Unmarshal(a.body, &page); err != nil {
			return nil, fmt.Errorf("%s answered %d (request-id %s) with a body that is not a session list: %v", list, a.status, a.requestID, err)
		}
		for _, raw := range page.Data {
			var s struct {
				ID       string            `json:"id"`
				Metadata map[string]string `json:"metadata"`
			}
			if json.Unmarshal(raw, &s) == nil && s.ID != "" && s.Metadata[MetadataRunID] == runID {
				return &listedSession{id: s.ID, raw: raw, requestID: a.requestID}, nil
			}
		}
		if page.NextPage == nil || *page.NextPage == "" {
			return nil, nil
		}
		q.Set("page", *page.NextPage)
	}
	return nil, nil
}

// eventsDelivered reports whether a session already holds an event of one
// of the initial events' types.
func (b *Backend) eventsDelivered(ctx context.Context, sessionID string, req sessions.CreateRequest, op operation) bool {
	var sent []string
	for _, raw := range req.InitialEvents {
		var e struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Type != "" {
			sent = append(sent, e.Type)
		}
	}
	delivered, err := b.hasEventOfType(ctx, sessionID, sent, op)
	if err != nil {
		b.log.Warn("could not check whether the initial events arrived; resending",
			append(op.logAttrs, "session_id", sessionID, "error", err.Error())...)
		return false
	}
	if delivered {
		b.log.Info("initial events already delivered by an earlier attempt", append(op.logAttrs, "session_id", sessionID)...)
	}
	return delivered
}

// hasEventOfType reports whether a session's first events include one of
// the given types; an error when the list failed.
func (b *Backend) hasEventOfType(ctx context.Context, sessionID string, types []string, op operation) (bool, error) {
	list := call{method: http.MethodGet, path: pathOf("sessions", sessionID, "events"), query: url.Values{"limit": {strconv.Itoa(lookupPageSize)}}}
	a, err := b.send(ctx, list)
	if err != nil || !a.ok() {
		return false, errors.New(op.failure(list, a, err).describe())
	}
	var page struct {
		Data []struct {
			Type string `json:"type"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &page); err != nil {
		return false, fmt.Errorf("%s answered %d (request-id %s) with a body that is not an event list: %v", list, a.status, a.requestID, err)
	}
	for _, e := range page.Data {
		if slices.Contains(types, e.Type) {
			return true, nil
		}
	}
	return false, nil
}
