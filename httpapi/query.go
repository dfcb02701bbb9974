package httpapi

import (
	"net/http"
	"net/url"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/listparams"
)

// Query parameters of the two listings. Every bad value is a 400 that names
// the parameter; the page token goes to the service, which binds it to the
// listing and its filters.

// badParam makes a listparams error a 400.
func badParam(err error) error {
	if err == nil {
		return nil
	}
	return apiError(http.StatusBadRequest, "%s", err.Error())
}

// The parameters of each listing, as the official SDKs define them
// (BetaDeploymentListParams, BetaDeploymentRunListParams); anything else is
// a 400 rather than silently ignored.
var (
	deploymentParams = []string{"agent_id", "created_at[gte]", "created_at[lte]", "include_archived", "limit", "page", "status"}
	runParams        = []string{"created_at[gt]", "created_at[gte]", "created_at[lt]", "created_at[lte]", "deployment_id",
		"has_error", "limit", "page", "trigger_type"}
)

func parseDeploymentQuery(v url.Values) (deployments.ListQuery, error) {
	q := deployments.ListQuery{AgentID: v.Get("agent_id"), Page: v.Get("page")}
	if err := listparams.Known(v, deploymentParams...); err != nil {
		return q, badParam(err)
	}
	var err error
	if q.Limit, err = listparams.Limit(v, 20, 100); err != nil {
		return q, badParam(err)
	}
	switch s := v.Get("status"); s {
	case "", deployments.StatusActive, deployments.StatusPaused:
		q.Status = s
	default:
		return q, apiError(http.StatusBadRequest, "status: must be active or paused, got %q", s)
	}
	inc, err := listparams.Bool(v, "include_archived")
	if err != nil {
		return q, badParam(err)
	}
	if inc != nil && *inc {
		if q.Status != "" {
			return q, apiError(http.StatusBadRequest, "status: cannot be combined with include_archived=true (archived deployments have no status filter); drop one of them")
		}
		q.IncludeArchived = true
	}
	if q.CreatedGTE, err = listparams.Time(v, "created_at[gte]"); err != nil {
		return q, badParam(err)
	}
	if q.CreatedLTE, err = listparams.Time(v, "created_at[lte]"); err != nil {
		return q, badParam(err)
	}
	return q, nil
}

func parseRunQuery(v url.Values) (deployments.RunQuery, error) {
	q := deployments.RunQuery{DeploymentID: v.Get("deployment_id"), Page: v.Get("page")}
	if err := listparams.Known(v, runParams...); err != nil {
		return q, badParam(err)
	}
	var err error
	if q.Limit, err = listparams.Limit(v, 20, 1000); err != nil {
		return q, badParam(err)
	}
	switch s := v.Get("trigger_type"); s {
	case "", deployments.TriggerManual, deployments.TriggerSchedule:
		q.Trigger = s
	default:
		return q, apiError(http.StatusBadRequest, "trigger_type: must be schedule or manual, got %q", s)
	}
	if q.HasError, err = listparams.Bool(v, "has_error"); err != nil {
		return q, badParam(err)
	}
	r, err := listparams.CreatedAt(v)
	if err != nil {
		return q, badParam(err)
	}
	q.CreatedGT, q.CreatedGTE, q.CreatedLT, q.CreatedLTE = r.GT, r.GTE, r.LT, r.LTE
	return q, nil
}
