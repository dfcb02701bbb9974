package httpapi

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
)

// Query parameters. Every bad value is a 400 that names the parameter. The
// cursor scope is the listing name plus its canonical filters, so a cursor
// only continues the listing it came from.

func parseLimit(v url.Values, def, max int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, apiError(http.StatusBadRequest, "limit: must be an integer between 1 and %d, got %q", max, s)
	}
	return n, nil
}

func parseBool(v url.Values, name string) (*bool, error) {
	s := v.Get(name)
	switch s {
	case "":
		return nil, nil
	case "true":
		b := true
		return &b, nil
	case "false":
		b := false
		return &b, nil
	}
	return nil, apiError(http.StatusBadRequest, "%s: must be true or false, got %q", name, s)
}

func parseTime(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, "%s: must be an RFC 3339 timestamp such as 2026-11-28T09:00:00Z, got %q", name, s)
	}
	if t.Unix() < 0 {
		t = time.Unix(0, 0)
	}
	return t.UTC(), nil
}

// scopeOf renders the listing name and its filters canonically.
func scopeOf(name string, v url.Values, filters []string) string {
	var parts []string
	for _, f := range filters {
		if s := v.Get(f); s != "" {
			parts = append(parts, f+"="+s)
		}
	}
	sort.Strings(parts)
	return name + "?" + strings.Join(parts, "&")
}

var deploymentFilters = []string{"agent_id", "status", "include_archived", "created_at[gte]", "created_at[lte]"}

func parseDeploymentQuery(v url.Values) (deployments.ListQuery, string, error) {
	var q deployments.ListQuery
	var err error
	if q.Limit, err = parseLimit(v, 20, 100); err != nil {
		return q, "", err
	}
	q.AgentID = v.Get("agent_id")
	switch s := v.Get("status"); s {
	case "", deployments.StatusActive, deployments.StatusPaused:
		q.Status = s
	default:
		return q, "", apiError(http.StatusBadRequest, "status: must be active or paused, got %q", s)
	}
	inc, err := parseBool(v, "include_archived")
	if err != nil {
		return q, "", err
	}
	if inc != nil && *inc {
		if q.Status != "" {
			return q, "", apiError(http.StatusBadRequest, "status: cannot be combined with include_archived=true (archived deployments have no status filter); drop one of them")
		}
		q.IncludeArchived = true
	}
	if q.CreatedGTE, err = parseTime(v, "created_at[gte]"); err != nil {
		return q, "", err
	}
	if q.CreatedLTE, err = parseTime(v, "created_at[lte]"); err != nil {
		return q, "", err
	}
	return q, scopeOf("deployments", v, deploymentFilters), nil
}

var runFilters = []string{"deployment_id", "trigger_type", "has_error", "created_at[gt]", "created_at[gte]", "created_at[lt]", "created_at[lte]"}

func parseRunQuery(v url.Values) (deployments.RunQuery, string, error) {
	var q deployments.RunQuery
	var err error
	if q.Limit, err = parseLimit(v, 20, 1000); err != nil {
		return q, "", err
	}
	q.DeploymentID = v.Get("deployment_id")
	switch s := v.Get("trigger_type"); s {
	case "", deployments.TriggerManual, deployments.TriggerSchedule:
		q.Trigger = s
	default:
		return q, "", apiError(http.StatusBadRequest, "trigger_type: must be schedule or manual, got %q", s)
	}
	if q.HasError, err = parseBool(v, "has_error"); err != nil {
		return q, "", err
	}
	if q.CreatedGT, err = parseTime(v, "created_at[gt]"); err != nil {
		return q, "", err
	}
	if q.CreatedGTE, err = parseTime(v, "created_at[gte]"); err != nil {
		return q, "", err
	}
	if q.CreatedLT, err = parseTime(v, "created_at[lt]"); err != nil {
		return q, "", err
	}
	if q.CreatedLTE, err = parseTime(v, "created_at[lte]"); err != nil {
		return q, "", err
	}
	return q, scopeOf("deployment_runs", v, runFilters), nil
}
