package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/sandbox0/sandbox0d/deployments"
)

// The deployment page: the definition (never a token: the store holds
// only sealed ones and this page shows whether one is set), the next five
// fire times, the runs, and the actions.

type resourceView struct {
	Type     string
	What     string // url, file id or memory store id
	Checkout string
	Mount    string
	TokenSet bool
	Access   string
}

type kv struct{ Key, Value string }

type deploymentView struct {
	Row           deploymentRow
	Description   string
	Agent         string
	AgentVersion  int64
	Environment   string
	InitialEvents string // pretty JSON
	Resources     []resourceView
	Vaults        []string
	Metadata      []kv
	Budget        string
	Upcoming      []*timeView
	UpcomingNote  string
	CreatedAt     *timeView
	UpdatedAt     *timeView
	ArchivedAt    *timeView
	LastRunAt     *timeView
	Runs          []runRow
	RunsNext      string
	RunsFirst     string
	Trigger       string // runs filter: "", manual, schedule
	Error         string // an action the API refused
	Notice        string
}

func (c *Console) deploymentPage(w http.ResponseWriter, r *http.Request) {
	c.showDeployment(w, r, http.StatusOK, "", noticeText(r.URL.Query().Get("done")))
}

// noticeText turns a fixed vocabulary into the banner after an action
// (never text from the query string).
func noticeText(done string) string {
	switch done {
	case "run":
		return "Run started: it is the newest run below."
	case "pause":
		return "Paused: no scheduled run fires until it is unpaused."
	case "unpause":
		return "Unpaused: the schedule fires again from its next occurrence."
	case "archive":
		return "Archived: it no longer fires and cannot be run or changed."
	case "send":
		return "Message sent."
	case "interrupt":
		return "Interrupt sent."
	case "retry":
		return "Delivery queued again."
	}
	return ""
}

func (c *Console) showDeployment(w http.ResponseWriter, r *http.Request, status int, errMsg, notice string) {
	ctx := r.Context()
	d, err := c.cfg.Service.Get(ctx, r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, statusOf(err), errorMessage(err))
		return
	}
	now := c.cfg.Service.Now()
	v := deploymentView{Row: c.deploymentRow(ctx, d, now), Description: d.Description, Agent: d.Agent.ID, AgentVersion: d.Agent.Version,
		Environment: d.EnvironmentID, Vaults: d.VaultIDs, Error: errMsg, Notice: notice,
		CreatedAt: newTime(d.CreatedAt, "UTC", now), UpdatedAt: newTime(d.UpdatedAt, "UTC", now), ArchivedAt: timePtr(d.ArchivedAt, "UTC", now)}
	zone := "UTC"
	if d.Schedule != nil {
		zone = d.Schedule.Timezone
		v.LastRunAt = timePtr(d.LastRunAt, zone, now)
		for _, t := range c.cfg.Service.Upcoming(d) {
			v.Upcoming = append(v.Upcoming, newTime(t, zone, now))
		}
		switch {
		case d.Archived():
			v.UpcomingNote = "Archived: it will not fire again."
		case d.PausedReason != nil:
			v.UpcomingNote = "Paused: these are the times it would fire if unpaused now."
		}
	}
	var events bytes.Buffer
	for i, ev := range d.InitialEvents {
		if i > 0 {
			events.WriteByte('\n')
		}
		_ = json.Indent(&events, ev, "", "  ")
	}
	v.InitialEvents = events.String()
	for _, res := range d.Resources {
		rv := resourceView{Type: res.Type, TokenSet: len(res.SealedToken) > 0}
		switch res.Type {
		case deployments.ResourceGitHubRepository:
			rv.What = res.URL
			if res.Checkout != nil {
				rv.Checkout = res.Checkout.Type + " " + res.Checkout.Name + res.Checkout.SHA
			}
		case deployments.ResourceFile:
			rv.What = res.FileID
		case deployments.ResourceMemoryStore:
			rv.What = res.MemoryStoreID
			if res.Access != nil {
				rv.Access = *res.Access
			}
		}
		if res.MountPath != nil {
			rv.Mount = *res.MountPath
		}
		v.Resources = append(v.Resources, rv)
	}
	keys := make([]string, 0, len(d.Metadata))
	for k := range d.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Metadata = append(v.Metadata, kv{k, d.Metadata[k]})
	}
	if len(d.Budget) > 0 {
		v.Budget = budgetText(d.Budget)
	}
	q := r.URL.Query()
	rq := deployments.RunQuery{DeploymentID: d.ID, Limit: 25, Page: q.Get("runs_page")}
	switch t := q.Get("trigger"); t {
	case "manual", "schedule":
		rq.Trigger, v.Trigger = t, t
	}
	page, err := c.cfg.Service.ListRuns(ctx, rq)
	if err != nil {
		v.Error = errorMessage(err)
		status = statusOf(err)
	}
	for _, run := range page.Items {
		v.Runs = append(v.Runs, newRunRow(run, zone, now))
	}
	base := Prefix + "deployments/" + url.PathEscape(d.ID)
	if page.NextPage != "" {
		nq := url.Values{"runs_page": {page.NextPage}}
		if v.Trigger != "" {
			nq.Set("trigger", v.Trigger)
		}
		v.RunsNext = base + "?" + nq.Encode() + "#runs"
	}
	if rq.Page != "" {
		v.RunsFirst = base + "#runs"
	}
	c.render(w, r, status, "deployment", d.Name, v)
}

// budgetText reads {"type":"limit","max_list_cost":{"amount":"<cents>","currency"}}.
func budgetText(raw json.RawMessage) string {
	var b struct {
		Type        string `json:"type"`
		MaxListCost struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"max_list_cost"`
	}
	if json.Unmarshal(raw, &b) != nil || b.Type != "limit" {
		return string(raw)
	}
	return centsText(b.MaxListCost.Amount, b.MaxListCost.Currency)
}

func centsText(amount, currency string) string {
	n, err := strconv.ParseInt(amount, 10, 64)
	if err != nil {
		return amount + " " + currency
	}
	return strconv.FormatFloat(float64(n)/100, 'f', 2, 64) + " " + currency
}

func (c *Console) archiveConfirmPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.cfg.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, statusOf(err), errorMessage(err))
		return
	}
	c.render(w, r, http.StatusOK, "archive", "Archive "+d.Name, struct{ ID, Name string }{d.ID, d.Name})
}

// deploymentAction runs one of the API's deployment actions through the
// same service call the API handler makes.
func (c *Console) deploymentAction(w http.ResponseWriter, r *http.Request) {
	ctx, id, action := r.Context(), r.PathValue("id"), r.PathValue("action")
	var err error
	switch action {
	case "run":
		var run *deployments.Run
		if run, err = c.cfg.Service.RunNow(ctx, id); err == nil && run.Error != nil {
			// The API answers 200 with the run carrying its error: the
			// page says so as plainly.
			c.showDeployment(w, r, http.StatusOK, "The run was recorded but its session could not be created: "+
				string(run.Error.Type)+": "+run.Error.Message, "")
			return
		}
	case "pause":
		_, err = c.cfg.Service.Pause(ctx, id)
	case "unpause":
		_, err = c.cfg.Service.Unpause(ctx, id)
	case "archive":
		_, err = c.cfg.Service.Archive(ctx, id)
	default:
		c.errorPage(w, r, http.StatusNotFound, "There is no deployment action "+strconv.Quote(action)+".")
		return
	}
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			c.errorPage(w, r, http.StatusNotFound, errorMessage(err))
			return
		}
		c.showDeployment(w, r, statusOf(err), errorMessage(err), "")
		return
	}
	c.log.Info("console action", "action", action, "deployment_id", id, "key_id", viewerOf(r).KeyID)
	http.Redirect(w, r, Prefix+"deployments/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
}
