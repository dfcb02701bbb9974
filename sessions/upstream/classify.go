package upstream

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// failure is one unsuccessful upstream attempt, as the classifier sees it.
type failure struct {
	call      string
	status    int // 0 when no HTTP answer arrived
	requestID string
	errType   string // upstream error.type
	message   string // upstream error.message (or a body excerpt), secrets redacted
	enveloped bool   // the body was a Managed Agents error envelope
	transport *transportError
	// transportText is the transport error's text, secrets redacted.
	transportText string
	retryAfter    time.Duration
	about         subject
	archived      bool
}

// mayHaveApplied reports whether the upstream may have done the work even
// though the attempt failed, so a resend could do it twice.
func (f *failure) mayHaveApplied() bool {
	if f.transport != nil {
		return !f.transport.unsent
	}
	return f.status >= 500 || f.status == http.StatusConflict
}

// describe names the call, the upstream status and request id, and the
// upstream's message, for run error messages and logs. It never holds a
// secret: the message was redacted when the failure was built.
func (f *failure) describe() string {
	if f.transport != nil {
		return f.transportText
	}
	reqID := "no request-id"
	if f.requestID != "" {
		reqID = "request-id " + f.requestID
	}
	s := fmt.Sprintf("%s answered %d %s (%s)", f.call, f.status, http.StatusText(f.status), reqID)
	if f.message != "" {
		s += ": " + f.message
	}
	if f.retryAfter > 0 {
		s += fmt.Sprintf(" [retry-after %s]", f.retryAfter)
	}
	return s
}

// subject is the kind of object an upstream error message is about.
type subject int

const (
	aboutNothing subject = iota
	aboutEnvironment
	aboutAgent
	aboutVault
	aboutFile
	aboutMemoryStore
	aboutWorkspace
	aboutSkill
	aboutRepository
	aboutSession
)

// subjects are the ids one request sent, each with its kind, so that an
// upstream message can be traced to the field it is about.
type subjects []namedID

type namedID struct {
	id   string
	kind subject
}

func (s subjects) with(id string, kind subject) subjects {
	if id == "" {
		return s
	}
	return append(s[:len(s):len(s)], namedID{id: id, kind: kind})
}

// subjectKeywords decide when a message names no id of the request; the
// first listed wins, and "agent" comes last because the word also appears
// in generic text ("Managed Agents").
var subjectKeywords = []struct {
	kind subject
	re   *regexp.Regexp
}{
	{aboutEnvironment, regexp.MustCompile(`(?i)\benvironment(s|_ids?)?\b`)},
	{aboutVault, regexp.MustCompile(`(?i)\bvault(s|_ids?)?\b`)},
	{aboutMemoryStore, regexp.MustCompile(`(?i)\b(memory[ _-]?stores?|memory_store_ids?)\b`)},
	{aboutFile, regexp.MustCompile(`(?i)\bfile(s|_ids?)?\b`)},
	{aboutSkill, regexp.MustCompile(`(?i)\bskill(s|_ids?)?\b`)},
	{aboutWorkspace, regexp.MustCompile(`(?i)\bworkspace(s|_ids?)?\b`)},
	{aboutRepository, regexp.MustCompile(`(?i)\b(repository|repositories|github_repository)\b`)},
	{aboutAgent, regexp.MustCompile(`(?i)\bagent(s|_ids?)?\b`)},
}

var archivedWord = regexp.MustCompile(`(?i)\barchived?\b`)

// about finds what msg is about: the request id that appears earliest in
// it, else the first keyword of subjectKeywords that appears.
func (s subjects) about(msg string) subject {
	best, bestAt := aboutNothing, -1
	for _, n := range s {
		if at := strings.Index(msg, n.id); at >= 0 && (bestAt < 0 || at < bestAt) {
			best, bestAt = n.kind, at
		}
	}
	if best != aboutNothing {
		return best
	}
	for _, k := range subjectKeywords {
		if k.re.MatchString(msg) {
			return k.kind
		}
	}
	return aboutNothing
}

// rule is one row of the classification table.
type rule struct {
	// upstream describes the answer, as in the table of docs/local-sessions.md.
	upstream string
	matches  func(f *failure) bool
	// Exactly one outcome: a run error type, the upstream's own error.type,
	// or a retry.
	errorType    sessions.ErrorType
	upstreamType bool
	retry        bool
}

// outcome is the row's right column, as in the table of docs/local-sessions.md.
func (r rule) outcome() string {
	switch {
	case r.retry:
		return "retried (see below)"
	case r.upstreamType:
		return "that type"
	}
	return "`" + string(r.errorType) + "`"
}

// classificationRules turns a failed upstream call into a run error type;
// the first matching row wins. This is the table for docs/local-sessions.md:
//
//	| Upstream answer | Run error |
//	|---|---|
//	| 429 | `session_rate_limited_error` |
//	| 401 or 403 | `organization_disabled_error` |
//	| any 4xx whose error.type is itself a run error type | that type |
//	| 400, 404, 409 or 422 saying archived, about the environment | `environment_archived_error` |
//	| 400, 404, 409 or 422 saying archived, about the agent | `agent_archived_error` |
//	| 400, 404, 409 or 422 saying archived, about a vault | `vault_archived_error` |
//	| 400, 404, 409 or 422 saying archived, about a memory store | `memory_store_archived_error` |
//	| 400, 404, 409 or 422 saying archived, about the workspace | `workspace_archived_error` |
//	| 404 about the environment | `environment_not_found_error` |
//	| 404 about a vault | `vault_not_found_error` |
//	| 404 about a file | `file_not_found_error` |
//	| 404 about the agent (it is gone) | `agent_archived_error` |
//	| 404 about a skill | `skill_not_found_error` |
//	| 404 about anything else, with an error envelope (a memory store, a repository …) | `session_resource_not_found_error` |
//	| 404 without an error envelope (no such route: check upstream.url) | `unknown_error` |
//	| 408, 409 not about archival, 5xx | retried (see below) |
//	| network error, or no answer within upstream.request_timeout | retried (see below) |
//	| any other 4xx (400, 413, 422 …) | `session_creation_rejected_error` |
//	| anything else (e.g. a 3xx redirect, which is never followed) | `unknown_error` |
//
// Retried rows are tried again with capped exponential backoff and full
// jitter (0.5 s doubling up to 30 s), or after the upstream's retry-after
// (retry-after-ms, retry-after seconds or date), while the retry window
// (upstream.retry_window, default 2 minutes) is open; they end in
// `unknown_error` when it closes, or at once when retry-after points past
// it. A retried POST that may already have been applied (no answer after
// the request was sent, a 5xx, a 409) is never blindly repeated: see
// dedupe.go.
//
// Which object an answer is about: the ids the request sent (environment_id,
// the agent id, vault_ids, file ids, memory store ids, repository URLs) are
// searched for in error.message and the one that appears first wins; when
// the message names none of them, keywords decide, in this order:
// environment, vault, memory store, file, skill, workspace, repository,
// agent. "Saying archived" means error.message contains the word
// "archived". Every run error message names the upstream call, its HTTP
// status and its request id (the request-id header, x-request-id, or the
// envelope's request_id), with any secret the daemon knows replaced by
// [redacted].
var classificationRules = []rule{
	{upstream: "429", errorType: sessions.ErrSessionRateLimited, matches: statusIn(429)},
	{upstream: "401 or 403", errorType: sessions.ErrOrganizationDisabled, matches: statusIn(401, 403)},
	{upstream: "any 4xx whose error.type is itself a run error type", upstreamType: true, matches: func(f *failure) bool {
		t := sessions.ErrorType(f.errType)
		return f.status/100 == 4 && t.Known() && t != sessions.ErrUnknown
	}},
	archivedRule("the environment", aboutEnvironment, sessions.ErrEnvironmentArchived),
	archivedRule("the agent", aboutAgent, sessions.ErrAgentArchived),
	archivedRule("a vault", aboutVault, sessions.ErrVaultArchived),
	archivedRule("a memory store", aboutMemoryStore, sessions.ErrMemoryStoreArchived),
	archivedRule("the workspace", aboutWorkspace, sessions.ErrWorkspaceArchived),
	notFoundRule("the environment", aboutEnvironment, sessions.ErrEnvironmentNotFound),
	notFoundRule("a vault", aboutVault, sessions.ErrVaultNotFound),
	notFoundRule("a file", aboutFile, sessions.ErrFileNotFound),
	notFoundRule("the agent (it is gone)", aboutAgent, sessions.ErrAgentArchived),
	notFoundRule("a skill", aboutSkill, sessions.ErrSkillNotFound),
	{upstream: "404 about anything else, with an error envelope (a memory store, a repository …)", errorType: sessions.ErrSessionResourceNotFound,
		matches: func(f *failure) bool { return f.status == 404 && f.enveloped }},
	{upstream: "404 without an error envelope (no such route: check upstream.url)", errorType: sessions.ErrUnknown, matches: statusIn(404)},
	{upstream: "408, 409 not about archival, 5xx", retry: true, matches: func(f *failure) bool {
		return f.status == 408 || (f.status == 409 && !f.archived) || f.status >= 500
	}},
	{upstream: "network error, or no answer within upstream.request_timeout", retry: true,
		matches: func(f *failure) bool { return f.transport != nil }},
	{upstream: "any other 4xx (400, 413, 422 …)", errorType: sessions.ErrSessionCreationRejected,
		matches: func(f *failure) bool { return f.status/100 == 4 }},
	{upstream: "anything else (e.g. a 3xx redirect, which is never followed)", errorType: sessions.ErrUnknown,
		matches: func(*failure) bool { return true }},
}

func statusIn(codes ...int) func(*failure) bool {
	return func(f *failure) bool {
		for _, c := range codes {
			if f.status == c {
				return true
			}
		}
		return false
	}
}

func archivedRule(what string, kind subject, t sessions.ErrorType) rule {
	return rule{
		upstream:  "400, 404, 409 or 422 saying archived, about " + what,
		errorType: t,
		matches: func(f *failure) bool {
			return f.archived && f.about == kind && (f.status == 400 || f.status == 404 || f.status == 409 || f.status == 422)
		},
	}
}

func notFoundRule(what string, kind subject, t sessions.ErrorType) rule {
	return rule{
		upstream:  "404 about " + what,
		errorType: t,
		matches:   func(f *failure) bool { return f.status == 404 && f.about == kind },
	}
}

// classify returns the first row that matches f.
func classify(f *failure) rule {
	for _, r := range classificationRules {
		if r.matches(f) {
			return r
		}
	}
	// Unreachable: the last row matches everything.
	return classificationRules[len(classificationRules)-1]
}

// runError turns a final (not retried) row into the run's error.
func (r rule) runError(f *failure) *sessions.RunError {
	t := r.errorType
	if r.upstreamType {
		t = sessions.ErrorType(f.errType)
	}
	var lead string
	switch {
	case t == sessions.ErrSessionRateLimited:
		lead = "the upstream is rate-limiting session creation"
	case t == sessions.ErrOrganizationDisabled:
		lead = "the upstream refused the daemon's credentials (check upstream.api_key)"
	case t == sessions.ErrUnknown && f.status == http.StatusNotFound:
		lead = "the upstream has no such endpoint (check upstream.url)"
	case t == sessions.ErrUnknown:
		lead = "the upstream gave an unexpected answer"
	default:
		lead = "the upstream refused the session"
	}
	return &sessions.RunError{Type: t, Message: lead + ": " + f.describe()}
}
