package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/deployments"
)

// planSet answers POST /v1/deployment_sets/:set/plan: the plan, nothing changed.
func (a *API) planSet(c echo.Context) error { return a.applySet(c, false) }

// applySetRoute answers POST /v1/deployment_sets/:set/apply: the plan,
// applied in one transaction.
func (a *API) applySetRoute(c echo.Context) error { return a.applySet(c, true) }

func (a *API) applySet(c echo.Context, commit bool) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := deployments.DecodeApply(body)
	if err != nil {
		return err
	}
	if !commit && req.IfMatch != "" {
		return apiError(http.StatusBadRequest, "if_match: only the apply route takes it; the plan route always answers the current plan")
	}
	plan, err := a.svc.Apply(c.Request().Context(), c.Param("set"), req, commit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, plan)
}
