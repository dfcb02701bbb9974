package deployments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandbox0/sandbox0d/schedule"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Sealer seals and opens write-only secrets bound to their owner.
type Sealer interface {
	Seal(owner crypto.Owner, plaintext []byte) ([]byte, error)
	Open(owner crypto.Owner, sealed []byte) ([]byte, error)
}

// Config wires a Service.
type Config struct {
	Store   *store.Store
	Backend sessions.Backend
	Sealer  Sealer
	Now     func() time.Time
	Logger  *slog.Logger
	// SessionTimeout bounds one backend call for a run (default 5 minutes).
	SessionTimeout time.Duration
	// RecoverLookupTimeout bounds the search for the sessions of the runs
	// whose intents a recovery resolves (default 10s, recover.go).
	RecoverLookupTimeout time.Duration
	// OnRun, when set, is told about every recorded run and how long the
	// backend call took (metrics).
	OnRun func(run *Run, backendLatency time.Duration)
	// Events, when set, receives the webhook events of committed changes.
	Events EventSink
	// DSTPolicy is the config's schedule.dst_policy: how every schedule
	// treats wall times a DST transition skips or repeats, for fire times,
	// upcoming_runs_at and the never-fires check on create and update.
	DSTPolicy schedule.DSTPolicy
}

// Service implements the deployment operations and the run pipeline.
type Service struct {
	store   *store.Store
	backend sessions.Backend
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	// recoverLookupTimeout: see Config.RecoverLookupTimeout.
	recoverLookupTimeout time.Duration
	onRun                func(*Run, time.Duration)
	events               EventSink
	// dstPolicy: see Config.DSTPolicy.
	dstPolicy schedule.DSTPolicy

	sealerMu sync.RWMutex
	sealer   Sealer
	// rotation is held shared from sealing a token until its deployment is
	// committed, and exclusively by a key rotation, so a rotation can never
	// retire the identity that a token sealed a moment ago still needs.
	rotation sync.RWMutex

	plans     *planCache
	plannerMu sync.RWMutex
	planner   Planner // nil until NewScheduler subscribes one; set before serving

	// lastCreated keeps created_at strictly increasing so newest-first order
	// and cursors are stable even when two creates share a clock reading.
	createdMu   sync.Mutex
	lastCreated time.Time

	// afterFireSnapshot, when set (tests), runs between a fire's snapshot of
	// the document and its transaction.
	afterFireSnapshot func(id string)

	// fence: cluster.go.
	fence  atomic.Pointer[store.Fence]
	writer atomic.Int64
}

// NewService returns a service over an open store.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backend == nil {
		cfg.Backend = sessions.Unconfigured{}
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 5 * time.Minute
	}
	return &Service{store: cfg.Store, backend: cfg.Backend, sealer: cfg.Sealer, now: cfg.Now,
		log: cfg.Logger, timeout: cfg.SessionTimeout, recoverLookupTimeout: cfg.RecoverLookupTimeout, plans: newPlanCache(cfg.DSTPolicy), onRun: cfg.OnRun, events: cfg.Events,
		dstPolicy: cfg.DSTPolicy}
}

// RotateKeys runs a key rotation while no token is being sealed, then makes
// the keyring it returns the service's.
func (s *Service) RotateKeys(rotate func() (*crypto.Keyring, error)) (*crypto.Keyring, error) {
	s.rotation.Lock()
	defer s.rotation.Unlock()
	k, err := rotate()
	if err != nil {
		return nil, err
	}
	s.SetSealer(k)
	return k, nil
}

// SetSealer swaps the keyring (after a key rotation).
func (s *Service) SetSealer(k Sealer) {
	s.sealerMu.Lock()
	s.sealer = k
	s.sealerMu.Unlock()
}

func (s *Service) currentSealer() Sealer {
	s.sealerMu.RLock()
	defer s.sealerMu.RUnlock()
	return s.sealer
}

// Now is the service clock, truncated to microseconds: the stored and wire
// precision.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) nextCreatedAt() time.Time {
	s.createdMu.Lock()
	defer s.createdMu.Unlock()
	t := s.Now()
	if !t.After(s.lastCreated) {
		t = s.lastCreated.Add(time.Microsecond)
	}
	s.lastCreated = t
	return t
}

// Create stores a new deployment.
func (s *Service) Create(ctx context.Context, in CreateInput) (*Deployment, error) {
	if err := s.checkSchedulePolicy(in.Schedule); err != nil {
		return nil, err
	}
	agent, err := s.resolveAgent(ctx, in.Agent)
	if err != nil {
		return nil, err
	}
	if err := s.checkReferences(ctx, agent, in.EnvironmentID, in.VaultIDs, resourceInputs(in.Resources)); err != nil {
		return nil, err
	}
	s.rotation.RLock()
	defer s.rotation.RUnlock()
	now := s.nextCreatedAt()
	d := &Deployment{
		ID:            NewID(PrefixDeployment),
		Name:          in.Name,
		Description:   in.Description,
		Agent:         agent,
		EnvironmentID: in.EnvironmentID,
		InitialEvents: in.InitialEvents,
		VaultIDs:      in.VaultIDs,
		Metadata:      in.Metadata,
		Budget:        in.Budget,
		Schedule:      in.Schedule,
		CreatedAt:     now,
		UpdatedAt:     now,
		Generation:    1,
		PlanFrom:      now,
	}
	var to sealedTo
	if d.Resources, to, err = s.sealResources(d.ID, in.Resources); err != nil {
		return nil, err
	}
	evID := event.NewID()
	// Encoded before the transaction: group commit runs every writer's
	// function in turn on the committing goroutine, so work done here instead
	// of inside it is work the whole group does not wait for.
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if err := s.store.Write(func(tx *store.Tx) error {
		if err := to.check(tx); err != nil {
			return err
		}
		if err := putDeploymentDoc(tx, d, doc); err != nil {
			return err
		}
		return s.emit(tx, evID, event.DeploymentCreated, d.ID, now)
	}); err != nil {
		return nil, fmt.Errorf("store deployment: %w", err)
	}
	s.notify()
	s.changed(d)
	return d, nil
}

// Get returns a deployment by id.
func (s *Service) Get(_ context.Context, id string) (*Deployment, error) {
	var d *Deployment
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		d, err = getDeployment(tx, id)
		return err
	})
	return d, err
}

// Update applies a validated update.
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (*Deployment, error) {
	current, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if current.Archived() {
		return nil, conflict("deployment %s is archived and cannot be updated", id)
	}
	if err := checkOwnership(current, in.Force); err != nil {
		return nil, err
	}
	if in.Schedule.Set {
		if err := s.checkSchedulePolicy(in.Schedule.Value); err != nil {
			return nil, err
		}
	}
	agent := current.Agent
	if in.Agent.Set {
		if agent, err = s.resolveAgent(ctx, in.Agent.Value); err != nil {
			return nil, err
		}
	}
	env := current.EnvironmentID
	if in.EnvironmentID.Set {
		env = in.EnvironmentID.Value
	}
	vaults := current.VaultIDs
	if in.VaultIDs.Set {
		vaults = in.VaultIDs.Value
	}
	// The backend is asked before the rotation lock is taken: a slow
	// upstream must not hold a key rotation (and every create) behind it.
	if in.Agent.Set || in.EnvironmentID.Set || in.VaultIDs.Set || in.Resources.Set {
		resources := current.Resources
		if in.Resources.Set {
			resources = resourceInputs(in.Resources.Value)
		}
		if err := s.checkReferences(ctx, agent, env, vaults, resources); err != nil {
			return nil, err
		}
	}
	s.rotation.RLock()
	defer s.rotation.RUnlock()
	var sealed []Resource
	var to sealedTo
	if in.Resources.Set {
		if sealed, to, err = s.sealResources(id, in.Resources.Value); err != nil {
			return nil, err
		}
	}
	var updated *Deployment
	evID := event.NewID()
	err = s.store.Write(func(tx *store.Tx) error {
		if err := to.check(tx); err != nil {
			return err
		}
		d, err := getDeployment(tx, id)
		if err != nil {
			return err
		}
		if d.Archived() {
			return conflict("deployment %s is archived and cannot be updated", id)
		}
		if err := checkOwnership(d, in.Force); err != nil {
			return err
		}
		now := s.Now()
		if err := applyUpdate(d, in, agent, sealed, now); err != nil {
			return err
		}
		d.UpdatedAt = now
		updated = d
		if err := putDeployment(tx, d); err != nil {
			return err
		}
		return s.emit(tx, evID, event.DeploymentUpdated, d.ID, now)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	s.changed(updated)
	return updated, nil
}

// applyUpdate applies the absent/null/value semantics of every field. It
// runs inside the write transaction on the freshest copy, so a concurrent
// fire's bookkeeping (last_run_at) is never overwritten with a stale copy.
func applyUpdate(d *Deployment, in UpdateInput, agent sessions.AgentRef, sealed []Resource, now time.Time) error {
	if in.Name.Set {
		d.Name = in.Name.Value
	}
	if in.Description.Set {
		d.Description = in.Description.Value // null and "" both clear
	}
	if in.Agent.Set {
		d.Agent = agent
	}
	if in.EnvironmentID.Set {
		d.EnvironmentID = in.EnvironmentID.Value
	}
	if in.InitialEvents.Set {
		d.InitialEvents = in.InitialEvents.Value
	}
	if in.Resources.Set {
		d.Resources = sealed
	}
	if in.VaultIDs.Set {
		d.VaultIDs = in.VaultIDs.Value
	}
	if in.MetadataClear {
		d.Metadata = nil
	}
	if in.Metadata != nil {
		merged := map[string]string{}
		for k, v := range d.Metadata {
			merged[k] = v
		}
		for k, v := range in.Metadata {
			if v == nil {
				delete(merged, k)
			} else {
				merged[k] = *v
			}
		}
		if len(merged) > MaxMetadataPairs {
			return invalid("metadata", "would have %d pairs after this update, at most %d allowed", len(merged), MaxMetadataPairs)
		}
		if len(merged) == 0 {
			merged = nil
		}
		d.Metadata = merged
	}
	if in.Budget.Set {
		d.Budget = in.Budget.Value
	}
	if in.Schedule.Set {
		if !sameSchedule(d.Schedule, in.Schedule.Value) {
			d.Generation++
			// A new schedule starts fresh: its first fire is the next
			// occurrence after now, never a backfill of the old one.
			d.PlanFrom = now
		}
		d.Schedule = in.Schedule.Value
	}
	return nil
}

func sameSchedule(a, b *Schedule) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Pause stops future fires.
func (s *Service) Pause(_ context.Context, id string) (*Deployment, error) {
	return s.changeStatus(id, "paused", event.DeploymentPaused, func(d *Deployment) bool {
		if d.PausedReason != nil && d.PausedReason.Type == PausedManual {
			return false
		}
		d.PausedReason = &PausedReason{Type: PausedManual}
		return true
	})
}

// Unpause resumes from the next occurrence after now; nothing is backfilled.
func (s *Service) Unpause(_ context.Context, id string) (*Deployment, error) {
	return s.changeStatus(id, "unpaused", event.DeploymentUnpaused, func(d *Deployment) bool {
		if d.PausedReason == nil {
			return false
		}
		d.PausedReason = nil
		d.PlanFrom = s.Now() // resume from now: no backfill of the paused time
		return true
	})
}

// Archive retires a deployment for good: it stops firing and is hidden from
// lists unless include_archived. Archiving twice is a no-op.
func (s *Service) Archive(_ context.Context, id string) (*Deployment, error) {
	var out *Deployment
	evID := event.NewID()
	err := s.store.Write(func(tx *store.Tx) error {
		d, err := getDeployment(tx, id)
		if err != nil {
			return err
		}
		out = d
		if d.Archived() {
			return nil
		}
		now := s.Now()
		d.ArchivedAt = &now
		d.PausedReason = nil
		d.UpdatedAt = now
		d.Generation++
		if err := putDeployment(tx, d); err != nil {
			return err
		}
		return s.emit(tx, evID, event.DeploymentArchived, d.ID, now)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	s.changed(out)
	return out, nil
}

// changeStatus applies change and, when it moved the deployment between
// active and paused, reports evType.
func (s *Service) changeStatus(id, verb, evType string, change func(*Deployment) bool) (*Deployment, error) {
	var out *Deployment
	evID := event.NewID()
	err := s.store.Write(func(tx *store.Tx) error {
		d, err := getDeployment(tx, id)
		if err != nil {
			return err
		}
		if d.Archived() {
			return conflict("deployment %s is archived and cannot be %s", id, verb)
		}
		out = d
		wasPaused := d.PausedReason != nil
		if !change(d) {
			return nil
		}
		d.UpdatedAt = s.Now()
		d.Generation++
		if err := putDeployment(tx, d); err != nil {
			return err
		}
		if wasPaused == (d.PausedReason != nil) {
			return nil // a manual pause replacing an error pause: still paused
		}
		return s.emit(tx, evID, evType, d.ID, d.UpdatedAt)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	s.changed(out)
	return out, nil
}

// ListQuery filters a newest-first deployment listing.
type ListQuery struct {
	AgentID         string
	Status          string // "", StatusActive or StatusPaused
	IncludeArchived bool
	CreatedGTE      time.Time // zero: unbounded
	CreatedLTE      time.Time // zero: unbounded
	// Page is the NextPage of a previous page of the same listing with the
	// same filters; "" starts from the newest.
	Page  string
	Limit int
}

// scope binds a page token to the listing and its filters.
func (q ListQuery) scope() string {
	return listparams.Scope("deployments", map[string]string{
		"agent_id": q.AgentID, "status": q.Status, "include_archived": fmt.Sprint(q.IncludeArchived),
		"created_at[gte]": listparams.FormatTime(q.CreatedGTE), "created_at[lte]": listparams.FormatTime(q.CreatedLTE),
	})
}

// Page is one page of a listing.
type Page[T any] struct {
	Items []T
	// NextPage continues the listing; "" on the last page.
	NextPage string
}

// List returns one page of deployments, newest first.
func (s *Service) List(_ context.Context, q ListQuery) (Page[*Deployment], error) {
	var page Page[*Deployment]
	var err error
	page.NextPage, err = s.listDocs(q, func(doc []byte) error {
		d, err := decodeDeployment(doc)
		if err == nil {
			page.Items = append(page.Items, d)
		}
		return err
	})
	return page, err
}

// listDocs reads one page of deployment documents into each (inside the
// read transaction; doc is only valid during the call) and returns the next
// page's token.
func (s *Service) listDocs(q ListQuery, each func(doc []byte) error) (string, error) {
	scope := q.scope()
	after, err := s.decodePage(scope, q.Page)
	if err != nil {
		return "", err
	}
	var nextPage string
	err = s.store.View(func(tx *store.Tx) error {
		next, err := tx.EachDeployment(store.DeploymentQuery{AgentID: q.AgentID, Status: q.Status,
			IncludeArchived: q.IncludeArchived, CreatedGTE: q.CreatedGTE, CreatedLTE: q.CreatedLTE, After: after, Limit: q.Limit}, each)
		if err != nil {
			return err
		}
		nextPage = s.encodePage(scope, next)
		return nil
	})
	return nextPage, err
}

// decodePage reads a page token of scope; nil for "" (the first page).
func (s *Service) decodePage(scope, token string) (*store.Position, error) {
	if token == "" {
		return nil, nil
	}
	pos, err := s.store.Cursors().DecodePosition(scope, token)
	if err != nil {
		return nil, invalid("page", "invalid cursor; pass the next_page value of a previous response to the same listing with the same filters")
	}
	return &pos, nil
}

func (s *Service) encodePage(scope string, next *store.Position) string {
	if next == nil {
		return ""
	}
	return s.store.Cursors().EncodePosition(scope, *next)
}

func (s *Service) resolveAgent(ctx context.Context, in AgentInput) (sessions.AgentRef, error) {
	ref, err := s.backend.ResolveAgent(ctx, in.ID, in.Version)
	if err != nil {
		return sessions.AgentRef{}, backendRefError(err, nil)
	}
	return ref, nil
}

func (s *Service) checkReferences(ctx context.Context, agent sessions.AgentRef, env string, vaults []string, resources []Resource) error {
	refs := sessions.References{Agent: agent, EnvironmentID: env, VaultIDs: vaults}
	for _, r := range resources {
		switch r.Type {
		case ResourceFile:
			refs.FileIDs = append(refs.FileIDs, r.FileID)
		case ResourceMemoryStore:
			refs.MemoryStoreIDs = append(refs.MemoryStoreIDs, r.MemoryStoreID)
		}
	}
	if err := s.backend.CheckReferences(ctx, refs); err != nil {
		return backendRefError(err, resources)
	}
	return nil
}

// backendRefError maps a backend's answer about a definition's ids to a
// client error: unknown or rejected ids are the request's fault (400), a
// backend that refuses the daemon's credentials is a configuration problem
// (502, not retried), an unreachable one is transient (503).
func backendRefError(err error, resources []Resource) error {
	var nf *sessions.NotFoundError
	if errors.As(err, &nf) {
		return &Error{Kind: KindInvalid, Field: resourceField(nf.Field, nf.ID, resources), Message: notFoundMessage(nf), Err: err}
	}
	var fe *sessions.FieldError
	if errors.As(err, &fe) {
		return &Error{Kind: KindInvalid, Field: fe.Field, Message: fe.Message, Err: err}
	}
	if errors.Is(err, sessions.ErrRefused) {
		return &Error{Kind: KindBadGateway, Message: err.Error(), Err: err}
	}
	if errors.Is(err, sessions.ErrUnavailable) {
		return &Error{Kind: KindUnavailable, Message: err.Error(), Err: err}
	}
	return fmt.Errorf("session backend: %w", err)
}

// resourceField turns a backend's "file_id" or "memory_store_id" into the
// path of the resource that holds the id, e.g. "resources[2].file_id".
func resourceField(field, id string, resources []Resource) string {
	if field != "file_id" && field != "memory_store_id" {
		return field
	}
	for i, r := range resources {
		if (field == "file_id" && r.Type == ResourceFile && r.FileID == id) ||
			(field == "memory_store_id" && r.Type == ResourceMemoryStore && r.MemoryStoreID == id) {
			return fieldAt("resources", i) + "." + field
		}
	}
	return field
}

func notFoundMessage(nf *sessions.NotFoundError) string {
	if nf.Archived {
		return fmt.Sprintf("%q is archived", nf.ID)
	}
	return fmt.Sprintf("%q was not found on the session backend", nf.ID)
}

func resourceInputs(in []ResourceInput) []Resource {
	out := make([]Resource, len(in))
	for i, r := range in {
		out[i] = r.Resource
	}
	return out
}

// sealResources seals every token bound to (deployment, position); the
// plaintext is dropped here.
func (s *Service) sealResources(deploymentID string, in []ResourceInput) ([]Resource, sealedTo, error) {
	if len(in) == 0 {
		return nil, "", nil
	}
	var to sealedTo
	out := make([]Resource, len(in))
	for i, r := range in {
		out[i] = r.Resource
		out[i].SealedToken = nil
		if r.Token == "" {
			continue
		}
		sealer := s.currentSealer()
		if sealer == nil {
			return nil, "", &Error{Kind: KindUnavailable, Field: fieldAt("resources", i) + ".authorization_token",
				Message: "no secret keyring is configured, so tokens cannot be stored"}
		}
		owner := crypto.Owner{DeploymentID: deploymentID, Position: i}
		var sealed []byte
		var err error
		if rs, ok := sealer.(RecipientSealer); ok {
			var recipient string
			sealed, recipient, err = rs.SealTo(owner, []byte(r.Token))
			to = sealedTo(recipient)
		} else {
			sealed, err = sealer.Seal(owner, []byte(r.Token))
		}
		if de, ok := errors.AsType[*Error](err); ok {
			// A refusal (a cluster node without the new identity): its
			// own status and message, at the token's field.
			refusal := *de
			refusal.Field = fieldAt("resources", i) + ".authorization_token"
			return nil, "", &refusal
		}
		if err != nil {
			return nil, "", fmt.Errorf("seal token of resources[%d]: %w", i, err)
		}
		out[i].SealedToken = sealed
	}
	return out, to, nil
}

// RecipientSealer is a Sealer that says which age recipient a seal used,
// so the transaction that stores the token can check that it is still the
// store's sealing recipient (store.Tx.SealRecipient): a `keys rotate` on
// another node of a cluster may commit between the seal and the write.
type RecipientSealer interface {
	SealTo(owner crypto.Owner, plaintext []byte) (sealed []byte, recipient string, err error)
}

// sealedTo is the recipient tokens were sealed to ("": none sealed, or a
// sealer that does not say).
type sealedTo string

// check runs inside the write that stores the tokens. On etcd the read
// joins the transaction's read set, so a rotation committed after it makes
// the write run again, and fail here.
func (to sealedTo) check(tx *store.Tx) error {
	if to == "" {
		return nil
	}
	if rec := tx.SealRecipient(); rec != "" && rec != string(to) {
		return &Error{Kind: KindUnavailable, Field: "resources",
			Message: "a key rotation (keys rotate) committed while this request's tokens were being sealed to the previous identity; nothing was stored: send the request again"}
	}
	return nil
}

func getDeployment(tx *store.Tx, id string) (*Deployment, error) {
	doc := tx.GetDeployment(id)
	if doc == nil {
		return nil, notFound("deployment %q not found", id)
	}
	return decodeDeployment(doc)
}

func decodeDeployment(doc []byte) (*Deployment, error) {
	var d Deployment
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("decode stored deployment: %w", err)
	}
	return &d, nil
}

func putDeployment(tx *store.Tx, d *Deployment) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return putDeploymentDoc(tx, d, doc)
}

// putDeploymentDoc stores d encoded as doc (json.Marshal(d)).
func putDeploymentDoc(tx *store.Tx, d *Deployment, doc []byte) error {
	return tx.PutDeployment(store.DeploymentIndex{
		ID: d.ID, CreatedAt: d.CreatedAt, AgentID: d.Agent.ID,
		Archived: d.Archived(), Paused: d.PausedReason != nil,
	}, doc)
}
