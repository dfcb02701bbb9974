package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/store"
)

// cloneBatch is how many cloned deployments one transaction writes.
const cloneBatch = 20_000

// cloneDeployments grows a stopped daemon's store from its API-created
// deployments (templates[j] was created with spec(j)) to want deployments,
// writing the copies straight into the bbolt file instead of through the
// API: seeding a million deployments through the API takes most of an hour
// here, and what the scaling curve measures (start, memory, per-request
// latency) depends on what is stored, not on how it got there. Copy i is
// template i mod 30 (the same schedule shape of spec: scheduled or manual,
// and which expression form) with its own id, name, metadata, created_at
// (after every existing one) and spec(i)'s expression, so the clones carry
// the same variety of schedules as API-created deployments. It returns the
// new ids.
func cloneDeployments(dataDir string, templates []string, have, want int, spec func(i int) deploymentSpec) ([]string, error) {
	if len(templates) < 30 {
		return nil, fmt.Errorf("clone: need at least 30 API-created templates, have %d", len(templates))
	}
	st, err := store.Open(filepath.Join(dataDir, "sandbox0d.db"), store.Options{NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	defer st.Close()
	var tmpl [30]deployments.Deployment
	var last time.Time
	if err := st.View(func(tx *store.Tx) error {
		for j := range tmpl {
			doc := tx.GetDeployment(templates[j])
			if doc == nil {
				return fmt.Errorf("template %s not stored", templates[j])
			}
			if err := json.Unmarshal(doc, &tmpl[j]); err != nil {
				return err
			}
		}
		return tx.ForEachDeployment(func(_ string, doc []byte) error {
			var d struct {
				CreatedAt time.Time `json:"created_at"`
			}
			if err := json.Unmarshal(doc, &d); err != nil {
				return err
			}
			if d.CreatedAt.After(last) {
				last = d.CreatedAt
			}
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("clone: read templates: %w", err)
	}
	ids := make([]string, 0, want-have)
	for from := have; from < want; from += cloneBatch {
		to := min(from+cloneBatch, want)
		err := st.Update(func(tx *store.Tx) error {
			for i := from; i < to; i++ {
				d := tmpl[i%30]
				s := spec(i)
				d.ID = deployments.NewID(deployments.PrefixDeployment)
				d.Name = s.Name
				d.Metadata = map[string]string{"bench": "scale", "i": strconv.Itoa(i)}
				last = last.Add(time.Microsecond)
				d.CreatedAt, d.UpdatedAt = last, last
				if d.Schedule != nil {
					sch := *d.Schedule
					sch.Expression = s.Expression
					d.Schedule = &sch
				}
				doc, err := json.Marshal(&d)
				if err != nil {
					return err
				}
				if err := tx.PutDeployment(store.DeploymentIndex{ID: d.ID, CreatedAt: d.CreatedAt, AgentID: d.Agent.ID}, doc); err != nil {
					return err
				}
				ids = append(ids, d.ID)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("clone: %w", err)
		}
	}
	return ids, nil
}
