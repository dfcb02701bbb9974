package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The session page reads the session and its events through the session
// backend's own handler, the one the API routes /v1/sessions… to, so it
// shows what a client of the API reads, for the local backend and for an
// upstream one alike.

// maxTranscript bounds the events one page shows (the newest are kept).
const maxTranscript = 2000

type sessionJSON struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	Title         *string `json:"title"`
	DeploymentID  *string `json:"deployment_id"`
	EnvironmentID string  `json:"environment_id"`
	// Node is the cluster node that runs the session (cluster mode only).
	Node       string            `json:"node"`
	Metadata   map[string]string `json:"metadata"`
	Budget     json.RawMessage   `json:"budget"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	ArchivedAt *time.Time        `json:"archived_at"`
	Agent      struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
		Name    string `json:"name"`
	} `json:"agent"`
	Usage struct {
		InputTokens          int64 `json:"input_tokens"`
		OutputTokens         int64 `json:"output_tokens"`
		CacheReadInputTokens int64 `json:"cache_read_input_tokens"`
		ListCost             *struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"list_cost"`
	} `json:"usage"`
	Stats struct {
		ActiveSeconds float64 `json:"active_seconds"`
	} `json:"stats"`
}

// summaryView is the session's status, usage and cost against its budget;
// the live transcript replaces it when the stream ends.
type summaryView struct {
	ID           string
	Status       string
	Live         bool // running: the transcript follows the stream
	InputTokens  int64
	OutputTokens int64
	CacheRead    int64
	Cost         string
	Budget       string
	BudgetPct    int // -1: no budget
	ActiveSecs   string
	UpdatedAt    *timeView
}

type sessionView struct {
	Summary     summaryView
	Title       string
	Agent       string
	Environment string
	Node        string // cluster mode: the node that runs the session
	Deployment  string
	Metadata    []kv
	CreatedAt   *timeView
	ArchivedAt  *timeView
	Events      []eventView
	Omitted     int
	LastEventID string
	StreamURL   string
	Error       string
	Notice      string
	NoBackend   bool
}

// sessionCall makes one request to the session backend's handler in
// process and returns its status and body.
func (c *Console) sessionCall(ctx context.Context, method, path string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, []byte(`{"error":{"message":"bad request path"}}`)
	}
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("anthropic-version", "2023-06-01")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.cfg.Sessions.ServeHTTP(rec, req)
	return rec.status, rec.body.Bytes()
}

type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(p []byte) (int, error) { r.WriteHeader(http.StatusOK); return r.body.Write(p) }

// apiMessage reads the error envelope's message.
func apiMessage(status int, body []byte) string {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
		return env.Error.Message
	}
	return fmt.Sprintf("the session backend answered %d %s", status, http.StatusText(status))
}

func sessionPath(id string, rest string) string { return "/v1/sessions/" + url.PathEscape(id) + rest }

func (c *Console) loadSession(ctx context.Context, id string) (*sessionJSON, int, string) {
	status, body := c.sessionCall(ctx, http.MethodGet, sessionPath(id, ""), nil)
	if status != http.StatusOK {
		return nil, status, apiMessage(status, body)
	}
	s := new(sessionJSON)
	if err := json.Unmarshal(body, s); err != nil {
		return nil, http.StatusBadGateway, "the session backend answered a session that does not decode: " + err.Error()
	}
	return s, http.StatusOK, ""
}

// history lists every event of the session, oldest first.
func (c *Console) history(ctx context.Context, id string) ([]json.RawMessage, string) {
	var all []json.RawMessage
	page := ""
	for range 1000 { // 1000 pages of 1000 is beyond any session
		q := url.Values{"limit": {"1000"}, "order": {"asc"}}
		if page != "" {
			q.Set("page", page)
		}
		status, body := c.sessionCall(ctx, http.MethodGet, sessionPath(id, "/events?"+q.Encode()), nil)
		if status != http.StatusOK {
			return all, apiMessage(status, body)
		}
		var list struct {
			Data     []json.RawMessage `json:"data"`
			NextPage *string           `json:"next_page"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return all, "the session backend answered an event list that does not decode: " + err.Error()
		}
		all = append(all, list.Data...)
		if list.NextPage == nil || *list.NextPage == "" || len(list.Data) == 0 {
			break
		}
		page = *list.NextPage
	}
	return all, ""
}

func (c *Console) summary(s *sessionJSON, now time.Time) summaryView {
	v := summaryView{ID: s.ID, Status: s.Status, Live: s.Status == "running" || s.Status == "rescheduling",
		InputTokens: s.Usage.InputTokens, OutputTokens: s.Usage.OutputTokens, CacheRead: s.Usage.CacheReadInputTokens,
		BudgetPct: -1, ActiveSecs: strconv.FormatFloat(s.Stats.ActiveSeconds, 'f', 1, 64), UpdatedAt: newTime(s.UpdatedAt, "UTC", now)}
	spent := 0.0
	if s.Usage.ListCost != nil {
		v.Cost = s.Usage.ListCost.Amount + " " + s.Usage.ListCost.Currency
		spent, _ = strconv.ParseFloat(s.Usage.ListCost.Amount, 64)
	}
	if len(s.Budget) > 0 && string(s.Budget) != "null" {
		v.Budget = budgetText(s.Budget)
		var b struct {
			MaxListCost struct {
				Amount string `json:"amount"`
			} `json:"max_list_cost"`
		}
		if json.Unmarshal(s.Budget, &b) == nil {
			if cents, err := strconv.ParseInt(b.MaxListCost.Amount, 10, 64); err == nil && cents > 0 {
				v.BudgetPct = min(int(spent*100*100/float64(cents)), 999)
			}
		}
	}
	return v
}

func (c *Console) sessionPage(w http.ResponseWriter, r *http.Request) {
	c.showSession(w, r, http.StatusOK, "", noticeText(r.URL.Query().Get("done")))
}

func (c *Console) showSession(w http.ResponseWriter, r *http.Request, status int, errMsg, notice string) {
	id := r.PathValue("id")
	if c.cfg.Sessions == nil {
		c.render(w, r, http.StatusNotFound, "session", "Session", sessionView{NoBackend: true})
		return
	}
	ctx := r.Context()
	s, st, msg := c.loadSession(ctx, id)
	if s == nil {
		c.errorPage(w, r, st, msg)
		return
	}
	now := c.cfg.Service.Now()
	v := sessionView{Summary: c.summary(s, now), Agent: s.Agent.ID, Environment: s.EnvironmentID, Node: s.Node, Error: errMsg, Notice: notice,
		CreatedAt: newTime(s.CreatedAt, "UTC", now), ArchivedAt: timePtr(s.ArchivedAt, "UTC", now)}
	if s.Agent.Name != "" && s.Agent.Name != s.Agent.ID {
		v.Agent += " (" + s.Agent.Name + ")"
	}
	v.Agent += " v" + strconv.FormatInt(s.Agent.Version, 10)
	if s.Title != nil {
		v.Title = *s.Title
	}
	if s.DeploymentID != nil {
		v.Deployment = *s.DeploymentID
	}
	for _, k := range sortedKeys(s.Metadata) {
		v.Metadata = append(v.Metadata, kv{k, s.Metadata[k]})
	}
	events, herr := c.history(ctx, id)
	if herr != "" && v.Error == "" {
		v.Error = herr
	}
	if len(events) > maxTranscript {
		v.Omitted = len(events) - maxTranscript
		events = events[len(events)-maxTranscript:]
	}
	for _, raw := range events {
		ev := newEventView(raw, now)
		v.Events = append(v.Events, ev)
		v.LastEventID = ev.ID
	}
	if v.Summary.Live {
		v.StreamURL = Prefix + "sessions/" + url.PathEscape(id) + "/stream?after=" + url.QueryEscape(v.LastEventID)
	}
	c.render(w, r, status, "session", "Session "+id, v)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sessionAction sends a message or an interrupt: the same POST
// /v1/sessions/{id}/events the API serves, through the same handler.
func (c *Console) sessionAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if c.cfg.Sessions == nil {
		c.errorPage(w, r, http.StatusNotFound, "This daemon's session backend serves no sessions.")
		return
	}
	var event map[string]any
	switch action {
	case "send":
		text := r.PostFormValue("message")
		if strings.TrimSpace(text) == "" {
			c.showSession(w, r, http.StatusBadRequest, "message: write something to send", "")
			return
		}
		event = map[string]any{"type": "user.message", "content": []map[string]string{{"type": "text", "text": text}}}
	case "interrupt":
		event = map[string]any{"type": "user.interrupt"}
	default:
		c.errorPage(w, r, http.StatusNotFound, "There is no session action "+strconv.Quote(action)+".")
		return
	}
	body, _ := json.Marshal(map[string]any{"events": []any{event}})
	status, resp := c.sessionCall(r.Context(), http.MethodPost, sessionPath(id, "/events"), body)
	if status != http.StatusOK {
		c.showSession(w, r, status, apiMessage(status, resp), "")
		return
	}
	c.log.Info("console action", "action", action, "session_id", id, "key_id", viewerOf(r).KeyID)
	http.Redirect(w, r, Prefix+"sessions/"+url.PathEscape(id)+"?done="+action+"#end", http.StatusSeeOther)
}
