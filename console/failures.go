package console

import (
	"net/http"
	"net/url"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// The failures page: failed runs across deployments (the runs listing
// with has_error, newest first, paged by its cursor) and failed webhook
// deliveries, newest first.

type failuresView struct {
	Runs       []runRow
	RunsNext   string
	RunsFirst  string
	Deliveries []deliveryRow
	Error      string
	Notice     string
}

func (c *Console) failuresPage(w http.ResponseWriter, r *http.Request) {
	c.showFailures(w, r, http.StatusOK, "", noticeText(r.URL.Query().Get("done")))
}

func (c *Console) showFailures(w http.ResponseWriter, r *http.Request, status int, errMsg, notice string) {
	ctx := r.Context()
	v := failuresView{Error: errMsg, Notice: notice}
	hasError := true
	pageTok := r.URL.Query().Get("page")
	page, err := c.cfg.Service.ListRuns(ctx, deployments.RunQuery{HasError: &hasError, Limit: pageSize, Page: pageTok})
	if err != nil {
		v.Error, status = errorMessage(err), statusOf(err)
	}
	now := c.cfg.Service.Now()
	names := map[string]*deployments.Deployment{}
	for _, run := range page.Items {
		d, ok := names[run.DeploymentID]
		if !ok {
			d, _ = c.cfg.Service.Get(ctx, run.DeploymentID)
			names[run.DeploymentID] = d
		}
		zone := "UTC"
		row := newRunRow(run, zone, now)
		if d != nil {
			row.Deployment = d.Name
			if d.Schedule != nil {
				row = newRunRow(run, d.Schedule.Timezone, now)
				row.Deployment = d.Name
			}
		}
		v.Runs = append(v.Runs, row)
	}
	if page.NextPage != "" {
		v.RunsNext = Prefix + "failures?" + url.Values{"page": {page.NextPage}}.Encode()
	}
	if pageTok != "" {
		v.RunsFirst = Prefix + "failures"
	}
	if c.cfg.Webhooks != nil {
		list, err := c.cfg.Webhooks.Deliveries(webhooks.DeliveryQuery{FailedOnly: true, Limit: pageSize})
		if err != nil && v.Error == "" {
			v.Error, status = "reading the delivery log failed: "+err.Error(), http.StatusInternalServerError
		}
		for _, dl := range list {
			row := newDeliveryRow(dl, now)
			row.Back = "failures"
			v.Deliveries = append(v.Deliveries, row)
		}
	}
	c.render(w, r, status, "failures", "Failures", v)
}
