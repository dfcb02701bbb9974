package deployments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Apply-related error kinds answered by the API.
const (
	// KindPrecondition is an if_match that no longer names the plan (412).
	KindPrecondition Kind = 100
)

// checkOwnership refuses an API update of a deployment a set's files own.
func checkOwnership(d *Deployment, force bool) error {
	if d.ManagedBy == nil || force {
		return nil
	}
	return conflict("deployment %s is managed by deployment set %q (key %q): its definition belongs to that set's files; "+
		"change the file and apply it, or pass ?force=true to update it anyway (the next apply restores the file's version)",
		d.ID, d.ManagedBy.Set, d.ManagedBy.Key)
}

// Apply computes the plan of set for req and, when commit is true, applies
// all of it in one store transaction: either every change is committed or
// none is. A plan with nothing to change commits nothing at all.
func (s *Service) Apply(ctx context.Context, set string, req ApplyRequest, commit bool) (*Plan, error) {
	if err := CheckSetName(set); err != nil {
		return nil, err
	}
	want, err := s.resolveDocuments(ctx, req.Documents)
	if err != nil {
		return nil, err
	}
	// Tokens are sealed and compared under the rotation lock, like a create.
	s.rotation.RLock()
	defer s.rotation.RUnlock()
	var plan *Plan
	if err := s.store.View(func(tx *store.Tx) error {
		plan, err = s.planIn(tx, set, want, req)
		return err
	}); err != nil {
		return nil, err
	}
	if !commit || !plan.Changed() {
		return plan, nil
	}
	var changed []*Deployment
	err = s.store.Update(func(tx *store.Tx) error {
		changed = changed[:0]
		// The plan is computed again inside the transaction: whatever
		// happened since the read above, what commits is what if_match
		// (when given) names.
		p, err := s.planIn(tx, set, want, req)
		if err != nil {
			return err
		}
		plan = p
		for i := range plan.Changes {
			d, err := s.applyChange(tx, set, &plan.Changes[i])
			if err != nil {
				return err
			}
			if d != nil {
				changed = append(changed, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	plan.Applied = true
	s.notify()
	for _, d := range changed {
		s.changed(d)
	}
	return plan, nil
}

// resolveDocuments asks the backend about each document's agent and
// references, as a create does, before any transaction.
func (s *Service) resolveDocuments(ctx context.Context, docs []ApplyDocument) ([]desired, error) {
	want := make([]desired, len(docs))
	for i := range docs {
		doc := &docs[i]
		in := doc.Input
		if err := s.checkSchedulePolicy(in.Schedule); err != nil {
			return nil, inDocument(err, i, doc.Source)
		}
		agent, err := s.resolveAgent(ctx, in.Agent)
		if err != nil {
			return nil, inDocument(err, i, doc.Source)
		}
		if err := s.checkReferences(ctx, agent, in.EnvironmentID, in.VaultIDs, resourceInputs(in.Resources)); err != nil {
			return nil, inDocument(err, i, doc.Source)
		}
		want[i] = desired{doc: doc, agent: agent}
	}
	return want, nil
}

// planIn computes the plan against the state tx sees and applies the
// guards: prune of more than half or all of the set, and if_match.
func (s *Service) planIn(tx *store.Tx, set string, want []desired, req ApplyRequest) (*Plan, error) {
	members := map[string]*Deployment{}
	// Only the set's members are decoded: a byte search skips the others
	// (set names need no JSON escaping, so the encoding is exact).
	marker := []byte(`"managed_by":{"set":"` + set + `"`)
	err := tx.ForEachDeployment(func(_ string, doc []byte) error {
		if !bytes.Contains(doc, marker) {
			return nil
		}
		d, err := decodeDeployment(doc)
		if err != nil {
			return err
		}
		// An archived member no longer belongs to the set: a document with
		// its key creates a new deployment.
		if d.ManagedBy != nil && d.ManagedBy.Set == set && !d.Archived() {
			members[d.ManagedBy.Key] = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	adopted, err := adoptions(tx, set, members, want)
	if err != nil {
		return nil, err
	}
	var open func(crypto.Owner, []byte) ([]byte, error)
	if sealer := s.currentSealer(); sealer != nil {
		open = sealer.Open
	}
	changes, err := computePlan(set, members, adopted, want, req.Prune, open)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Set: set, Changes: changes, Hash: hashPlan(set, changes)}
	if n := plan.Counts()[ActionArchive]; n > 0 && !req.Force && (n == len(members) || 2*n > len(members)) {
		what := "more than half"
		if n == len(members) {
			what = "all"
		}
		return nil, conflict("prune would archive %d of the %d deployments of set %q (%s of it); an empty or unmounted directory looks like this: "+
			"check the directory, or pass force to archive them", n, len(members), set, what)
	}
	if req.IfMatch != "" && req.IfMatch != plan.Hash {
		return nil, &Error{Kind: KindPrecondition, Field: "if_match", Message: fmt.Sprintf(
			"the plan changed: it is now %s, not %s; review the new plan and apply with its hash\n%s", plan.Hash, req.IfMatch, planSummary(plan))}
	}
	return plan, nil
}

// adoptions finds the deployments documents adopt (by key): each must exist,
// be live and belong to no set. A document whose key already has a member
// is matched by its key and its adopt is ignored, so a directory that
// adopted once applies unchanged ever after.
func adoptions(tx *store.Tx, set string, members map[string]*Deployment, want []desired) (map[string]*Deployment, error) {
	adopted := map[string]*Deployment{}
	by := map[string]string{} // deployment id → the key adopting it
	for i, w := range want {
		if w.doc.Adopt == "" || members[w.doc.Key] != nil {
			continue
		}
		field := fmt.Sprintf("deployments[%d].definition.adopt", i)
		if other, dup := by[w.doc.Adopt]; dup {
			return nil, invalid(field, "%s is also adopted by the document %q%s; a deployment can belong to one document", w.doc.Adopt, other, sourceSuffix(w.doc.Source))
		}
		d, err := getDeployment(tx, w.doc.Adopt)
		var e *Error
		if errors.As(err, &e) && e.Kind == KindNotFound {
			return nil, invalid(field, "deployment %s does not exist%s; remove adopt: to create a new deployment", w.doc.Adopt, sourceSuffix(w.doc.Source))
		} else if err != nil {
			return nil, err
		}
		if d.Archived() {
			return nil, invalid(field, "deployment %s is archived%s; remove adopt: to create a new deployment", d.ID, sourceSuffix(w.doc.Source))
		}
		if m := d.ManagedBy; m != nil {
			return nil, conflict("deployment %s cannot be adopted by %q: it belongs to set %q as %q; apply that set, or remove adopt:", d.ID, w.doc.Key, m.Set, m.Key)
		}
		by[d.ID] = w.doc.Key
		adopted[w.doc.Key] = d
	}
	return adopted, nil
}

// planSummary is a plan's changes, one per line, for an error message.
func planSummary(p *Plan) string {
	var b strings.Builder
	for _, c := range p.Changes {
		if c.Action == ActionUnchanged {
			continue
		}
		fmt.Fprintf(&b, "  %s %s", c.Action, c.Key)
		for _, d := range c.Diff {
			fmt.Fprintf(&b, " %s", d.Field)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

// applyChange writes one change inside the apply's transaction and returns
// the deployment it wrote (nil for unchanged).
func (s *Service) applyChange(tx *store.Tx, set string, c *PlanChange) (*Deployment, error) {
	now := s.Now()
	newEv := event.NewID
	switch c.Action {
	case ActionCreate:
		in := c.doc.Input
		created := s.nextCreatedAt()
		d := &Deployment{ID: NewID(PrefixDeployment), Name: in.Name, Description: in.Description, EnvironmentID: in.EnvironmentID,
			InitialEvents: in.InitialEvents, VaultIDs: in.VaultIDs, Metadata: in.Metadata, Budget: in.Budget, Schedule: in.Schedule,
			CreatedAt: created, UpdatedAt: created, Generation: 1, PlanFrom: created, ManagedBy: &ManagedBy{Set: set, Key: c.Key}}
		d.Agent = c.agent
		var err error
		if c.doc.Paused != nil && *c.doc.Paused {
			d.PausedReason = &PausedReason{Type: PausedManual}
		}
		var to sealedTo
		if d.Resources, to, err = s.sealResources(d.ID, in.Resources); err != nil {
			return nil, err
		}
		if err := to.check(tx); err != nil {
			return nil, err
		}
		c.DeploymentID = d.ID
		if err := putDeployment(tx, d); err != nil {
			return nil, err
		}
		return d, s.emit(tx, newEv(), event.DeploymentCreated, d.ID, created)
	case ActionUpdate:
		d, err := getDeployment(tx, c.DeploymentID)
		if err != nil {
			return nil, err
		}
		in := c.doc.Input
		agent := c.agent
		sealed, to, err := s.sealResources(d.ID, in.Resources)
		if err != nil {
			return nil, err
		}
		if err := to.check(tx); err != nil {
			return nil, err
		}
		d.Name, d.Description, d.Agent, d.EnvironmentID = in.Name, in.Description, agent, in.EnvironmentID
		d.InitialEvents, d.Resources, d.VaultIDs, d.Metadata, d.Budget = in.InitialEvents, sealed, in.VaultIDs, in.Metadata, in.Budget
		if !sameSchedule(d.Schedule, in.Schedule) {
			d.Generation++
			d.PlanFrom = now // a new schedule starts fresh, as in an update
		}
		d.Schedule = in.Schedule
		d.ManagedBy = &ManagedBy{Set: set, Key: c.Key} // an adopted deployment joins the set
		pauseEvent := ""
		if p := c.doc.Paused; p != nil {
			switch {
			case *p && d.PausedReason == nil:
				d.PausedReason = &PausedReason{Type: PausedManual}
				d.Generation++
				pauseEvent = event.DeploymentPaused
			case !*p && d.PausedReason != nil && d.PausedReason.Type == PausedManual:
				d.PausedReason = nil
				d.PlanFrom = now
				d.Generation++
				pauseEvent = event.DeploymentUnpaused
			}
		}
		d.UpdatedAt = now
		if err := putDeployment(tx, d); err != nil {
			return nil, err
		}
		if pauseEvent != "" {
			if err := s.emit(tx, newEv(), pauseEvent, d.ID, now); err != nil {
				return nil, err
			}
		}
		return d, s.emit(tx, newEv(), event.DeploymentUpdated, d.ID, now)
	case ActionArchive:
		d, err := getDeployment(tx, c.DeploymentID)
		if err != nil {
			return nil, err
		}
		d.ArchivedAt = &now
		d.PausedReason = nil
		d.UpdatedAt = now
		d.Generation++
		if err := putDeployment(tx, d); err != nil {
			return nil, err
		}
		return d, s.emit(tx, newEv(), event.DeploymentArchived, d.ID, now)
	}
	return nil, nil
}
