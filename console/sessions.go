package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// The sessions page: every session, newest first, paged by the API's
// cursor, read through the same handler as GET /v1/sessions. In a cluster
// that is the session index, so the list holds the sessions of every node,
// each with the node that runs it.

type sessionsView struct {
	Sessions  []sessionRow
	Next      string
	First     string
	ShowNode  bool // cluster mode: some session names its node
	Error     string
	Notice    string
	NoBackend bool
}

type sessionRow struct {
	ID          string
	Title       string
	Status      string
	Agent       string
	Deployment  string
	Node        string
	CreatedAt   *timeView
	UpdatedAt   *timeView
	ArchivedAt  *timeView
	Environment string
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Sessions == nil {
		c.render(w, r, http.StatusOK, "sessions", "Sessions", sessionsView{NoBackend: true})
		return
	}
	var v sessionsView
	status := http.StatusOK
	pageTok := r.URL.Query().Get("page")
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	if pageTok != "" {
		q.Set("page", pageTok)
		v.First = Prefix + "sessions"
	}
	st, body := c.sessionCall(r.Context(), http.MethodGet, "/v1/sessions?"+q.Encode(), nil)
	var list struct {
		Data     []sessionJSON `json:"data"`
		NextPage *string       `json:"next_page"`
	}
	switch {
	case st != http.StatusOK:
		v.Error, status = apiMessage(st, body), st
	case json.Unmarshal(body, &list) != nil:
		v.Error, status = "the session backend answered a session list that does not decode", http.StatusBadGateway
	}
	now := c.cfg.Service.Now()
	for _, s := range list.Data {
		row := sessionRow{ID: s.ID, Status: s.Status, Node: s.Node, Environment: s.EnvironmentID,
			Agent:     s.Agent.ID + " v" + strconv.FormatInt(s.Agent.Version, 10),
			CreatedAt: newTime(s.CreatedAt, "UTC", now), UpdatedAt: newTime(s.UpdatedAt, "UTC", now), ArchivedAt: timePtr(s.ArchivedAt, "UTC", now)}
		if s.Title != nil {
			row.Title = *s.Title
		}
		if s.DeploymentID != nil {
			row.Deployment = *s.DeploymentID
		}
		v.ShowNode = v.ShowNode || s.Node != ""
		v.Sessions = append(v.Sessions, row)
	}
	if list.NextPage != nil && *list.NextPage != "" {
		v.Next = Prefix + "sessions?" + url.Values{"page": {*list.NextPage}}.Encode()
	}
	c.render(w, r, status, "sessions", "Sessions", v)
}
