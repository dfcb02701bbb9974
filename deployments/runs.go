package deployments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// The run pipeline, shared by manual runs and scheduled fires:
//
//	1. intent: in one transaction, re-read the deployment, check it may run,
//	   reserve the fire (scheduled: unique (deployment, scheduled_at)) and
//	   write a run intent;
//	2. backend: open the sealed tokens in memory and create the session;
//	3. record: in one (group-committed) transaction, write the run, delete the intent
//	   and, for a scheduled fire failing with an auto-pause error, pause.
//
// A crash between 1 and 3 leaves the intent, which startup (in a cluster:
// the next leader, once the writer's lease expired) resolves (RecoverIntents)
// to the run's session when the backend finds one, else to an unknown_error
// run — a fire is never sent twice.
//
// A run's created_at is when it is recorded, not when it started (that is
// last_run_at for scheduled fires): runs then enter the newest-first listing
// at its head, so a slow session creation can never slip in below runs a
// client has already paged past.

// RunNow performs a manual run. It returns the run even when session
// creation failed: the run carries the error.
func (s *Service) RunNow(ctx context.Context, id string) (*Run, error) {
	var (
		d   *Deployment
		run Run
	)
	startedID, recordedID := event.NewID(), event.NewID()
	err := s.store.Write(func(tx *store.Tx) error {
		var err error
		if d, err = getDeployment(tx, id); err != nil {
			return err
		}
		if d.Archived() {
			return conflict("deployment %s is archived and cannot be run", id)
		}
		run = Run{ID: NewID(PrefixRun), DeploymentID: id, Agent: d.Agent, Trigger: TriggerManual, CreatedAt: s.nextCreatedAt()}
		if err := s.putIntent(tx, run); err != nil {
			return err
		}
		return s.emit(tx, startedID, event.RunStarted, run.ID, run.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	took := s.execute(ctx, d, &run)
	run.CreatedAt = s.nextCreatedAt()
	runDoc, err := json.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("record run %s: %w", run.ID, err)
	}
	if err := s.store.Write(func(tx *store.Tx) error { return s.recordRunDoc(tx, run, runDoc, recordedID) }); err != nil {
		return nil, fmt.Errorf("record run %s: %w", run.ID, err)
	}
	s.notify()
	s.observe(&run, took)
	return &run, nil
}

// FireOutcome says what a scheduled fire did, for logs and metrics.
type FireOutcome string

const (
	FireSkipped   FireOutcome = "skipped"   // deployment changed since planned, or already fired
	FireSucceeded FireOutcome = "succeeded" // session created
	FireFailed    FireOutcome = "failed"    // run recorded with an error
	FirePaused    FireOutcome = "paused"    // run recorded with an error that paused the deployment
)

// FireResult is the result of a scheduled fire.
type FireResult struct {
	Outcome FireOutcome
	Run     *Run
	Reason  string // why a fire was skipped
	// Deployment is the deployment as the fire left it (after the intent
	// was written), or as a skip found it.
	Deployment *Deployment
}

// fireIntent writes the intent of a scheduled fire if the deployment is
// still what the plan was made from. It returns the deployment as the fire
// left it (or as a skip found it), the run, or why the fire was skipped.
func (s *Service) fireIntent(id string, scheduledAt time.Time, generation uint64) (*Deployment, *Run, string, error) {
	// The run starts now; the transaction below may share its commit with
	// other fires and API writes (store.Write), so it must be idempotent.
	started := s.nextCreatedAt()
	startedID := event.NewID()
	runID := NewID(PrefixRun)
	// Everything the fire writes is decided and encoded from a snapshot of
	// the document before the transaction: group commit runs each writer's
	// function in turn on one goroutine while the others wait, so the
	// transaction only checks the document is byte for byte the snapshot and
	// writes what was prepared. A document changed meanwhile is planned again
	// inside the transaction from what it holds.
	var snapshot []byte
	if err := s.store.View(func(tx *store.Tx) error {
		snapshot = tx.GetDeployment(id)
		return nil
	}); err != nil {
		return nil, nil, "", err
	}
	if s.afterFireSnapshot != nil {
		s.afterFireSnapshot(id)
	}
	prepared, err := s.planFire(snapshot, runID, scheduledAt, started, generation)
	if err != nil {
		return nil, nil, "", err
	}
	var plan *firePlan
	fence := s.currentFence()
	err = s.store.Write(func(tx *store.Tx) error {
		plan = prepared
		// Cluster mode: only the leader's fires commit (cluster.go).
		if err := tx.RequireFence(fence); err != nil {
			return err
		}
		// Stored documents are never empty, so equal bytes (nil for both
		// when absent) mean the document is the snapshot.
		if !bytes.Equal(tx.ViewDeployment(id), plan.raw) {
			var err error
			if plan, err = s.planFire(tx.GetDeployment(id), runID, scheduledAt, started, generation); err != nil {
				return err
			}
		}
		if plan.reason != "" {
			return nil
		}
		if holder := tx.ScheduledFireRunID(id, scheduledAt); holder != "" && holder != runID {
			plan = &firePlan{found: plan.found, reason: "this scheduled fire already has a run"}
			return nil
		}
		if err := tx.ClaimScheduledFire(id, scheduledAt, runID); err != nil {
			return err
		}
		if err := tx.PutIntent(runID, plan.intent); err != nil {
			return err
		}
		if err := putDeploymentDoc(tx, plan.fired, plan.doc); err != nil {
			return err
		}
		return s.emit(tx, startedID, event.RunStarted, runID, started)
	})
	if err != nil {
		return nil, nil, "", err
	}
	if plan.reason != "" {
		return plan.found, nil, plan.reason, nil
	}
	s.notify()
	return plan.fired, &plan.run, "", nil
}

// firePlan is what a scheduled fire writes, decided from one version of the
// deployment's stored document.
type firePlan struct {
	raw    []byte      // the stored document (nil: none)
	found  *Deployment // decoded from raw
	reason string      // why the fire is skipped; "" to fire
	// When firing:
	run    Run
	intent []byte      // the encoded run intent
	fired  *Deployment // found with last_run_at and plan_from moved on
	doc    []byte      // fired, encoded
}

// planFire decides a scheduled fire from the stored document raw. The one
// condition it cannot see, another run already holding this fire, is
// checked in the transaction.
func (s *Service) planFire(raw []byte, runID string, scheduledAt, started time.Time, generation uint64) (*firePlan, error) {
	p := &firePlan{raw: raw}
	if raw == nil {
		p.reason = "deployment no longer exists"
		return p, nil
	}
	d, err := decodeDeployment(raw)
	if err != nil {
		return nil, err
	}
	p.found = d
	switch {
	case d.Archived():
		p.reason = "deployment is archived"
	case d.PausedReason != nil:
		p.reason = "deployment is paused"
	case d.Schedule == nil:
		p.reason = "deployment has no schedule"
	case d.Generation != generation:
		p.reason = "deployment changed since the fire was planned"
	}
	if p.reason != "" {
		return p, nil
	}
	at := scheduledAt.UTC()
	p.run = Run{ID: runID, DeploymentID: d.ID, Agent: d.Agent, Trigger: TriggerSchedule,
		ScheduledAt: &at, CreatedAt: started}
	if p.intent, err = json.Marshal(intent{Run: p.run, Writer: s.writer.Load()}); err != nil {
		return nil, err
	}
	fired := *d
	fired.LastRunAt = &started
	fired.PlanFrom = at
	p.fired = &fired
	if p.doc, err = json.Marshal(p.fired); err != nil {
		return nil, err
	}
	return p, nil
}

// Fire performs one scheduled fire planned under generation. It calls
// afterIntent (to plan the next fire) as soon as the intent is committed, so
// a slow backend never delays the schedule.
func (s *Service) Fire(ctx context.Context, id string, scheduledAt time.Time, generation uint64, afterIntent func(*Deployment)) (FireResult, error) {
	d, run, reason, err := s.fireIntent(id, scheduledAt, generation)
	if err != nil {
		return FireResult{}, err
	}
	if run == nil {
		return FireResult{Outcome: FireSkipped, Reason: reason, Deployment: d}, nil
	}
	if afterIntent != nil {
		afterIntent(d)
	}
	took := s.execute(ctx, d, run)
	run.CreatedAt = s.nextCreatedAt()
	paused := false
	recordedID, pausedID := event.NewID(), event.NewID()
	runDoc, err := json.Marshal(run)
	if err != nil {
		return FireResult{}, fmt.Errorf("record run %s: %w", run.ID, err)
	}
	err = s.store.Write(func(tx *store.Tx) error {
		paused = false
		if err := s.recordRunDoc(tx, *run, runDoc, recordedID); err != nil {
			return err
		}
		if run.Error == nil || !run.Error.Type.PausesDeployment() {
			return nil
		}
		cur, err := getDeployment(tx, id)
		if err != nil {
			return nil // deleted meanwhile: nothing to pause
		}
		if cur.Archived() || cur.PausedReason != nil || cur.Generation != generation {
			return nil // an operator acted meanwhile; their decision stands
		}
		cur.PausedReason = &PausedReason{Type: PausedError, ErrorType: run.Error.Type}
		cur.UpdatedAt = s.Now()
		cur.Generation++
		paused = true
		d = cur
		if err := putDeployment(tx, cur); err != nil {
			return err
		}
		return s.emit(tx, pausedID, event.DeploymentPaused, cur.ID, cur.UpdatedAt)
	})
	if err != nil {
		return FireResult{}, fmt.Errorf("record run %s: %w", run.ID, err)
	}
	s.notify()
	s.observe(run, took)
	res := FireResult{Run: run, Deployment: d}
	switch {
	case paused:
		res.Outcome = FirePaused
	case run.Error != nil:
		res.Outcome = FireFailed
	default:
		res.Outcome = FireSucceeded
	}
	return res, nil
}

func (s *Service) observe(run *Run, took time.Duration) {
	if s.onRun != nil {
		s.onRun(run, took)
	}
}

// execute calls the backend for a run, fills in SessionID / Error, and
// returns how long the backend took.
func (s *Service) execute(ctx context.Context, d *Deployment, run *Run) time.Duration {
	// The run must be recorded whatever happens to the caller (a client that
	// hangs up on a manual run), so the backend call is detached from its
	// cancellation and bounded by its own timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	req, rerr := s.createRequest(d, run.ID)
	if rerr != nil {
		run.Error = rerr
		return 0
	}
	start := s.now()
	sessionID, err := s.backend.CreateSession(ctx, req)
	took := s.now().Sub(start)
	if err != nil {
		// A run has exactly one of session_id and error. A session that was
		// created anyway (its events failed) is named in the message.
		re := sessions.AsRunError(err)
		t := re.Type
		if !t.Known() {
			t = sessions.ErrUnknown
		}
		msg := re.Message
		if sessionID != "" && !strings.Contains(msg, sessionID) {
			msg = fmt.Sprintf("session %s was created but: %s", sessionID, msg)
		}
		run.Error = &RunError{Type: t, Message: msg}
		return took
	}
	run.SessionID = sessionID
	return took
}

// createRequest snapshots the deployment for the backend, opening sealed
// tokens in memory only.
func (s *Service) createRequest(d *Deployment, runID string) (sessions.CreateRequest, *RunError) {
	req := sessions.CreateRequest{
		DeploymentID:  d.ID,
		RunID:         runID,
		Agent:         d.Agent,
		EnvironmentID: d.EnvironmentID,
		VaultIDs:      append([]string(nil), d.VaultIDs...),
		InitialEvents: d.InitialEvents,
		Metadata:      map[string]string{},
		Budget:        d.Budget,
	}
	for k, v := range d.Metadata {
		req.Metadata[k] = v
	}
	for i, r := range d.Resources {
		res := sessions.Resource{Type: r.Type, URL: r.URL, Checkout: r.Checkout, FileID: r.FileID, MemoryStoreID: r.MemoryStoreID}
		if r.MountPath != nil {
			res.MountPath = *r.MountPath
		}
		if r.Access != nil {
			res.Access = *r.Access
		}
		if r.Instructions != nil {
			res.Instructions = *r.Instructions
		}
		if len(r.SealedToken) > 0 {
			sealer := s.currentSealer()
			if sealer == nil {
				return req, &RunError{Type: sessions.ErrUnknown, Message: fmt.Sprintf("resources[%d]: no secret keyring is loaded to open the authorization token", i)}
			}
			tok, err := sealer.Open(crypto.Owner{DeploymentID: d.ID, Position: i}, r.SealedToken)
			if err != nil {
				return req, &RunError{Type: sessions.ErrUnknown, Message: fmt.Sprintf("resources[%d]: the sealed authorization token could not be opened: %v", i, err)}
			}
			res.AuthorizationToken = string(tok)
		}
		req.Resources = append(req.Resources, res)
	}
	return req, nil
}

func (s *Service) putIntent(tx *store.Tx, run Run) error {
	doc, err := json.Marshal(intent{Run: run, Writer: s.writer.Load()})
	if err != nil {
		return err
	}
	return tx.PutIntent(run.ID, doc)
}

func runIndex(run Run) store.RunIndex {
	ix := store.RunIndex{ID: run.ID, DeploymentID: run.DeploymentID, CreatedAt: run.CreatedAt,
		Scheduled: run.Trigger == TriggerSchedule, HasError: run.Error != nil}
	if run.ScheduledAt != nil {
		ix.ScheduledAt = *run.ScheduledAt
	}
	return ix
}

// recordRun writes the run, resolves its intent and reports the outcome
// (deployment_run.succeeded or .failed) under event id evID; idempotent.
func (s *Service) recordRun(tx *store.Tx, run Run, evID string) error {
	doc, err := json.Marshal(run)
	if err != nil {
		return err
	}
	return s.recordRunDoc(tx, run, doc, evID)
}

// recordRunDoc is recordRun with the run already encoded (json.Marshal(run)).
func (s *Service) recordRunDoc(tx *store.Tx, run Run, doc []byte, evID string) error {
	// Fenced by its intent: a run whose intent is gone while the run is
	// stored was recorded already (in a cluster, by the leader resolving the
	// intent of a node it presumed dead); recording it again would count it
	// twice.
	if !tx.HasIntent(run.ID) && tx.GetRun(run.ID) != nil {
		return nil
	}
	if err := tx.PutRun(runIndex(run), doc); err != nil {
		return err
	}
	if run.SessionID != "" {
		if err := tx.PutRunSession(run.SessionID, run.ID); err != nil {
			return err
		}
	}
	if err := tx.DeleteIntent(run.ID); err != nil {
		return err
	}
	return s.emit(tx, evID, runOutcomeEvent(run), run.ID, run.CreatedAt)
}

// RecoverIntents resolves every intent left by a previous process that
// stopped during session creation. A backend that can tell
// (sessions.RunSessionFinder: the local one from its own records, the
// upstream one by listing the agent's recent sessions for the run id in
// their metadata) resolves it to its session, a successful run; otherwise,
// or when the search fails or runs out of time (recover.go), the session
// may or may not exist and the run records unknown_error. A session is
// never created a second time.
func (s *Service) RecoverIntents() (int, error) { return s.recoverIntents(nil) }

// recoverIntents is RecoverIntents for the intents whose writer dead says
// is gone (nil: every intent).
func (s *Service) recoverIntents(dead func(writer int64) bool) (int, error) {
	// The backend is asked before the write transactions, which must not
	// wait on it.
	var pending []Run
	if err := s.store.View(func(tx *store.Tx) error {
		return tx.ForEachIntent(func(_ string, doc []byte) error {
			var in intent
			if err := json.Unmarshal(doc, &in); err != nil {
				return fmt.Errorf("decode run intent: %w", err)
			}
			if dead != nil && !dead(in.Writer) {
				return nil
			}
			pending = append(pending, in.Run)
			return nil
		})
	}); err != nil {
		return 0, err
	}
	var created, unsure map[string]string
	if finder, ok := s.backend.(sessions.RunSessionFinder); ok && len(pending) > 0 {
		created, unsure = s.sessionsOfRuns(finder, pending)
	}
	// Each intent is resolved by a write of its own. One transaction for
	// all of them failed on etcd once a burst left more than a dozen or so
	// (a run's record is several operations; etcd caps a transaction at
	// --max-txn-ops, 128 by default), on every leader after, for ever: the
	// runs were never recorded. Concurrent writes still share transactions
	// through group commit, which splits a group to fit.
	var (
		n        atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, recoverConcurrency)
	for _, run := range pending {
		run.CreatedAt = s.nextCreatedAt()
		run.SessionID, run.Error = created[run.ID], nil
		if run.SessionID == "" {
			msg := "the daemon stopped during session creation; the session may or may not have been created and was not retried"
			if why := unsure[run.ID]; why != "" {
				msg += " (looking for it failed: " + why + ")"
			}
			run.Error = &RunError{Type: sessions.ErrUnknown, Message: msg}
		}
		evID := event.NewID()
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			recorded := false
			err := s.store.Write(func(tx *store.Tx) error {
				recorded = false
				if !tx.HasIntent(run.ID) {
					return nil // resolved meanwhile
				}
				recorded = true
				return s.recordRun(tx, run, evID)
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("run %s: resolving its intent: %w", run.ID, err)
			}
			if err == nil && recorded {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if n.Load() > 0 {
		s.notify()
	}
	return int(n.Load()), firstErr
}

// recoverConcurrency bounds the intent resolutions in flight: enough to
// fill a group commit.
const recoverConcurrency = 32

// GetRun returns a run by id.
func (s *Service) GetRun(_ context.Context, id string) (*Run, error) {
	var run *Run
	err := s.store.View(func(tx *store.Tx) error {
		doc := tx.GetRun(id)
		if doc == nil {
			return notFound("deployment run %q not found", id)
		}
		run = new(Run)
		return json.Unmarshal(doc, run)
	})
	return run, err
}

// RunQuery filters a newest-first run listing.
type RunQuery struct {
	DeploymentID string
	Trigger      string // "", TriggerManual or TriggerSchedule
	HasError     *bool
	CreatedGT    time.Time // zero: unbounded
	CreatedGTE   time.Time
	CreatedLT    time.Time
	CreatedLTE   time.Time
	// Page is the NextPage of a previous page of the same listing with the
	// same filters; "" starts from the newest.
	Page  string
	Limit int
}

// scope binds a page token to the listing and its filters.
func (q RunQuery) scope() string {
	hasError := ""
	if q.HasError != nil {
		hasError = fmt.Sprint(*q.HasError)
	}
	return listparams.Scope("deployment_runs", map[string]string{
		"deployment_id": q.DeploymentID, "trigger_type": q.Trigger, "has_error": hasError,
		"created_at[gt]": listparams.FormatTime(q.CreatedGT), "created_at[gte]": listparams.FormatTime(q.CreatedGTE),
		"created_at[lt]": listparams.FormatTime(q.CreatedLT), "created_at[lte]": listparams.FormatTime(q.CreatedLTE),
	})
}

// ListRuns returns one page of runs, newest first.
func (s *Service) ListRuns(_ context.Context, q RunQuery) (Page[*Run], error) {
	scope := q.scope()
	after, err := s.decodePage(scope, q.Page)
	if err != nil {
		return Page[*Run]{}, err
	}
	var page Page[*Run]
	err = s.store.View(func(tx *store.Tx) error {
		docs, next, err := tx.ListRuns(store.RunQuery{DeploymentID: q.DeploymentID, Trigger: q.Trigger, HasError: q.HasError,
			CreatedGT: q.CreatedGT, CreatedGTE: q.CreatedGTE, CreatedLT: q.CreatedLT, CreatedLTE: q.CreatedLTE,
			After: after, Limit: q.Limit})
		if err != nil {
			return err
		}
		for _, doc := range docs {
			run := new(Run)
			if err := json.Unmarshal(doc, run); err != nil {
				return fmt.Errorf("decode stored run: %w", err)
			}
			page.Items = append(page.Items, run)
		}
		page.NextPage = s.encodePage(scope, next)
		return nil
	})
	return page, err
}

// DeploymentOfSession returns the deployment whose run created sessionID,
// if the daemon's records say so. runHint is a run id the session claims
// (its sandbox0d.deployment_run_id metadata, for sessions recorded before
// the session index existed); it is believed only when that run's record
// names this session.
func (s *Service) DeploymentOfSession(sessionID, runHint string) (string, bool) {
	var deploymentID string
	_ = s.store.View(func(tx *store.Tx) error {
		runID := tx.RunOfSession(sessionID)
		if runID == "" {
			runID = runHint
		}
		if runID == "" {
			return nil
		}
		doc := tx.GetRun(runID)
		if doc == nil {
			return nil
		}
		var run Run
		if json.Unmarshal(doc, &run) == nil && run.SessionID == sessionID {
			deploymentID = run.DeploymentID
		}
		return nil
	})
	return deploymentID, deploymentID != ""
}
