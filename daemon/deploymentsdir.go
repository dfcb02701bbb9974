package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/deployfiles"
)

// DeploymentsDirSet is the deployment set the deployments_dir directory
// owns; `sandbox0d apply` to other sets leaves it alone.
const DeploymentsDirSet = "default"

// applyMetrics report the deployments_dir applies.
type applyMetrics struct {
	lastSuccess prometheus.Gauge
	errors      prometheus.Counter
}

func newApplyMetrics(reg *prometheus.Registry) *applyMetrics {
	m := &applyMetrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox0d_apply_last_success_timestamp_seconds",
			Help: "Unix time of the last successful apply of deployments_dir (0: none since start).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox0d_apply_errors_total",
			Help: "Applies of deployments_dir that failed and applied nothing (see the daemon log for the file and field).",
		}),
	}
	reg.MustRegister(m.lastSuccess, m.errors)
	return m
}

// applyDeploymentsDir reads dir and applies it as the set "default", with
// prune (a removed file archives its deployment) under the guard that
// refuses to archive more than half or all of the set: an empty or
// unmounted directory archives nothing. Any bad file applies nothing; the
// last good state keeps running and the error is logged and counted.
func (d *Daemon) applyDeploymentsDir(dir string) {
	if dir == "" {
		return
	}
	start := time.Now()
	plan, err := d.applyDir(dir)
	if err != nil {
		d.metrics.apply.errors.Inc()
		d.log.Error("deployments_dir: nothing applied; the deployments keep their last applied state",
			"deployments_dir", dir, "error", err.Error())
		return
	}
	d.metrics.apply.lastSuccess.Set(float64(time.Now().Unix()))
	n := plan.Counts()
	d.log.Info("deployments_dir applied", "deployments_dir", dir, "set", plan.Set, "hash", plan.Hash, "committed", plan.Applied,
		"created", n[deployments.ActionCreate], "updated", n[deployments.ActionUpdate], "unchanged", n[deployments.ActionUnchanged],
		"archived", n[deployments.ActionArchive], "took", time.Since(start).String())
	for _, c := range plan.Changes {
		if c.Action == deployments.ActionUpdate {
			fields := make([]string, 0, len(c.Diff))
			for _, f := range c.Diff {
				fields = append(fields, f.Field)
			}
			d.log.Info("deployments_dir updated a deployment", "key", c.Key, "deployment_id", c.DeploymentID, "fields", fields)
		}
	}
}

func (d *Daemon) applyDir(dir string) (*deployments.Plan, error) {
	docs, err := deployfiles.DecodeDir(dir, deployfiles.Options{})
	if err != nil {
		return nil, err
	}
	// The documents go through the API's own decoder, so a file means the
	// same to the daemon as to `sandbox0d apply`.
	body, err := json.Marshal(map[string]any{"deployments": docs, "prune": true})
	if err != nil {
		return nil, err
	}
	req, err := deployments.DecodeApply(body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plan, err := d.svc.Apply(ctx, DeploymentsDirSet, req, true)
	if err != nil {
		var de *deployments.Error
		if errors.As(err, &de) && de.Kind == deployments.KindConflict {
			return nil, fmt.Errorf("%w (a daemon never forces: apply the directory with `sandbox0d apply --prune --force` to archive that many)", err)
		}
		return nil, err
	}
	return plan, nil
}
