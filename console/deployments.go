package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
)

// The deployments page: one page of the API's listing (its cursor and
// status filters), with the filters the store has no index for (name
// contains, failed last run, archived only) applied while reading pages
// forward, within a scan budget so a rare match cannot make one page read
// 100,000 documents.

const (
	pageSize   = 50
	scanBudget = 5000
)

type deploymentRow struct {
	ID            string
	Name          string
	Description   string
	ScheduleWords string
	Cron          string
	Zone          string
	Next          *timeView
	LastRun       *runRow
	State         string // active, paused, archived
	PauseReason   string
	ManagedBy     string
}

type runRow struct {
	ID          string
	Manual      bool
	ScheduledAt *timeView
	CreatedAt   *timeView
	SessionID   string
	ErrorType   string
	ErrorMsg    string
	Deployment  string // name, on pages listing runs of many deployments
	DeployID    string
}

type deploymentFilter struct {
	Name   string
	State  string // "", active, paused, archived, all
	Failed bool
}

func (f deploymentFilter) query() url.Values {
	q := url.Values{}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Failed {
		q.Set("failed", "1")
	}
	return q
}

func (f deploymentFilter) Any() bool { return f.Name != "" || f.State != "" || f.Failed }

type deploymentsView struct {
	Filter   deploymentFilter
	Rows     []deploymentRow
	NextURL  string
	FirstURL string // set when this is not the first page
	Scanned  int    // documents read for post-filters (0: no post-filter)
	Partial  bool   // the scan budget ran out before the page filled
	Error    string
}

func (c *Console) deploymentsPage(w http.ResponseWriter, r *http.Request) {
	v, status := c.listDeployments(r.Context(), r.URL.Query())
	c.render(w, r, status, "deployments", "Deployments", v)
}

func parseFilter(q url.Values) (deploymentFilter, string) {
	f := deploymentFilter{Name: strings.TrimSpace(q.Get("name")), State: q.Get("state"), Failed: q.Get("failed") == "1"}
	switch f.State {
	case "", "active", "paused", "archived", "all":
	default:
		return deploymentFilter{}, "state: must be active, paused, archived or all, got " + strconv.Quote(f.State)
	}
	if len(f.Name) > 200 {
		return deploymentFilter{}, "name: at most 200 characters"
	}
	return f, ""
}

func (c *Console) listDeployments(ctx context.Context, q url.Values) (deploymentsView, int) {
	f, bad := parseFilter(q)
	v := deploymentsView{Filter: f}
	if bad != "" {
		v.Error = bad
		return v, http.StatusBadRequest
	}
	lq := deployments.ListQuery{Page: q.Get("page"), Limit: pageSize}
	switch f.State {
	case "active":
		lq.Status = deployments.StatusActive
	case "paused":
		lq.Status = deployments.StatusPaused
	case "archived", "all":
		lq.IncludeArchived = true
	}
	now := c.cfg.Service.Now()
	post := f.Name != "" || f.Failed || f.State == "archived"
	needle := strings.ToLower(f.Name)
	for {
		if post {
			lq.Limit = pageSize - len(v.Rows) // so the cursor resumes right after the last row shown
		}
		var batch []*deployments.Deployment
		next, err := c.cfg.Service.EachStored(ctx, lq, func(st deployments.Stored) error {
			d, err := st.Decode()
			if err == nil {
				batch = append(batch, d)
			}
			return err
		})
		if err != nil {
			v.Error = errorMessage(err)
			return v, statusOf(err)
		}
		for _, d := range batch {
			if post {
				v.Scanned++
				if needle != "" && !strings.Contains(strings.ToLower(d.Name), needle) ||
					f.State == "archived" && !d.Archived() {
					continue
				}
			}
			row := c.deploymentRow(ctx, d, now)
			if f.Failed && (row.LastRun == nil || row.LastRun.ErrorType == "") {
				continue
			}
			v.Rows = append(v.Rows, row)
		}
		lq.Page = next
		if !post || next == "" || len(v.Rows) >= pageSize {
			break
		}
		if v.Scanned >= scanBudget {
			v.Partial = true
			break
		}
	}
	if lq.Page != "" {
		nq := f.query()
		nq.Set("page", lq.Page)
		v.NextURL = Prefix + "?" + nq.Encode()
	}
	if q.Get("page") != "" {
		v.FirstURL = Prefix + "?" + f.query().Encode()
	}
	return v, http.StatusOK
}

func (c *Console) deploymentRow(ctx context.Context, d *deployments.Deployment, now time.Time) deploymentRow {
	row := deploymentRow{ID: d.ID, Name: d.Name, Description: d.Description, State: "active"}
	zone := "UTC"
	if d.Schedule != nil {
		zone = d.Schedule.Timezone
		row.Cron, row.Zone, row.ScheduleWords = d.Schedule.Expression, d.Schedule.Timezone, cronWords(d.Schedule.Expression)
		if up := c.cfg.Service.Upcoming(d); len(up) > 0 && !d.Archived() && d.PausedReason == nil {
			row.Next = newTime(up[0], zone, now)
		}
	}
	switch {
	case d.Archived():
		row.State = "archived"
	case d.PausedReason != nil:
		row.State = "paused"
		row.PauseReason = pauseReason(d.PausedReason)
	}
	if d.ManagedBy != nil {
		row.ManagedBy = d.ManagedBy.Set + "/" + d.ManagedBy.Key
	}
	if page, err := c.cfg.Service.ListRuns(ctx, deployments.RunQuery{DeploymentID: d.ID, Limit: 1}); err == nil && len(page.Items) > 0 {
		rr := newRunRow(page.Items[0], zone, now)
		row.LastRun = &rr
	}
	return row
}

func pauseReason(p *deployments.PausedReason) string {
	if p.Type == deployments.PausedError {
		return "auto-paused: a scheduled run failed with " + string(p.ErrorType)
	}
	return "paused by an operator"
}

func newRunRow(run *deployments.Run, zone string, now time.Time) runRow {
	rr := runRow{ID: run.ID, Manual: run.Trigger == deployments.TriggerManual, SessionID: run.SessionID, DeployID: run.DeploymentID,
		ScheduledAt: timePtr(run.ScheduledAt, zone, now), CreatedAt: newTime(run.CreatedAt, zone, now)}
	if run.Error != nil {
		rr.ErrorType, rr.ErrorMsg = string(run.Error.Type), run.Error.Message
	}
	return rr
}
