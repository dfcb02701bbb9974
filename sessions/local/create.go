package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// sessionRun is what running a session's turns needs besides the record.
// mounts hold decrypted repository tokens until the workspace is prepared;
// vault values are read again for every turn and kept in memory only.
type sessionRun struct {
	id           string
	reservation  string // the placement's slot token (WithReservation), "" when none
	deploymentID string
	runID        string
	agent        Agent
	env          Environment
	vaultIDs     []string
	mounts       []mount
	workspace    string
	// creds holds the session's credentials and their placeholders, kept
	// across turns; redact removes their real values from what the
	// harness printed (set each turn). Only the session's runner uses them.
	creds  *projection.Session
	redact func([]byte) []byte
	// prepare is set until the workspace has been made and its resources
	// materialized; only the session's runner reads or clears it.
	prepare bool
}

// mount is one resource to materialize at rel inside the workspace.
type mount struct {
	resource   sessions.Resource
	rel        string
	resourceID string // of the session's resourceRecord
}

var errNotRunning = errors.New("the session is not running")

// CreateSession implements sessions.Backend. It returns once the session is
// stored and its first turn is started or waiting for one of
// local.max_concurrent_sessions slots; it never waits for the turn. Unknown
// agents, environments, vaults and files are *sessions.RunError of the
// matching type.
func (b *Backend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	// A fire while the data dir's file system is below its reserve is
	// refused as a transient rejection: the run says why, and the schedule
	// keeps firing (a full disk is not the deployment's fault).
	if low := b.diskErr(); low != nil {
		return "", runError(sessions.ErrSessionCreationRejected, "%v", low)
	}
	now := b.cfg.Now()
	run, rec, events, err := b.prepareRun(req, now)
	if err != nil {
		return "", err
	}
	run.reservation = reservationOf(ctx)
	if err := b.admit(run, rec, events); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return "", runError(sessions.ErrSessionCreationRejected, "%v (the data directory's file system is full)", err)
		}
		return "", err
	}
	b.log.Info("session created", "session_id", run.id, "deployment_id", req.DeploymentID,
		"run_id", req.RunID, "agent_id", run.agent.ID, "agent_version", run.agent.Version,
		"status", rec.Status)
	return run.id, nil
}

func runError(t sessions.ErrorType, format string, args ...any) *sessions.RunError {
	return &sessions.RunError{Type: t, Message: fmt.Sprintf(format, args...)}
}

// prepareRun checks a request against the configuration and builds the
// session's record, first events and run.
func (b *Backend) prepareRun(req sessions.CreateRequest, now time.Time) (*sessionRun, *sessionRecord, [][]byte, error) {
	agent, ok := b.agent(req.Agent.ID, req.Agent.Version)
	if !ok || agent.archived {
		return nil, nil, nil, runError(sessions.ErrAgentArchived,
			"agent %q version %d is archived or no longer on this machine (local.agents, or created through the API)", req.Agent.ID, req.Agent.Version)
	}
	env, envArchived, ok := b.environmentState(req.EnvironmentID)
	if !ok {
		return nil, nil, nil, runError(sessions.ErrEnvironmentNotFound,
			"environment %q is not on this machine (local.environments, or created through the API)", req.EnvironmentID)
	}
	if envArchived {
		return nil, nil, nil, runError(sessions.ErrEnvironmentArchived, "environment %q is archived", req.EnvironmentID)
	}
	for i, id := range req.VaultIDs {
		v, ok := b.vaults[id]
		if !ok {
			// Vault ids may also name vaults created through the API
			// (vault_api.go); their credentials are opened per turn.
			switch found, archived := b.apiVaultState(id); {
			case !found:
				return nil, nil, nil, runError(sessions.ErrVaultNotFound,
					"vault_ids[%d]: vault %q is not on this machine (local.vaults, or created through the API)", i, id)
			case archived:
				return nil, nil, nil, runError(sessions.ErrVaultArchived, "vault_ids[%d]: vault %q is archived", i, id)
			}
			continue
		}
		// Read now so that a missing vault fails the creation, not turn 1.
		_, err := readVault(v, b.cfg.CredentialsDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil, runError(sessions.ErrVaultNotFound, "vault_ids[%d]: %v", i, err)
		} else if err != nil {
			return nil, nil, nil, runError(sessions.ErrUnknown, "vault_ids[%d]: %v", i, err)
		}
	}
	// A deployment stored before the daemon lost what projection needs
	// (its config changed) gets its run refused with the same words.
	if fe := b.checkVaultsProjectable(req.VaultIDs); fe != nil {
		return nil, nil, nil, runError(sessions.ErrSessionCreationRejected, "%v", fe)
	}

	id := newID(sessionIDPrefix)
	workspace := filepath.Join(b.cfg.WorkspaceDir, id)
	mounts, resources, err := b.planResources(req.Resources, workspace, now)
	if err != nil {
		return nil, nil, nil, err
	}

	var events [][]byte
	for i, raw := range req.InitialEvents {
		ev, _, err := initialEvent(raw, now)
		if err != nil {
			return nil, nil, nil, runError(sessions.ErrSessionCreationRejected, "initial_events[%d] %v", i, err)
		}
		events = append(events, ev)
	}

	rec := &sessionRecord{
		ID:            id,
		DeploymentID:  req.DeploymentID,
		RunID:         req.RunID,
		Agent:         sessions.AgentRef{ID: agent.ID, Version: agent.Version},
		EnvironmentID: env.ID,
		VaultIDs:      slices.Clone(req.VaultIDs),
		Metadata:      maps.Clone(req.Metadata),
		Budget:        bytes.Clone(req.Budget),
		Resources:     resources,
		CreatedAt:     now,
		UpdatedAt:     now,
		Workspace:     workspace,
	}
	run := &sessionRun{
		id:           id,
		deploymentID: req.DeploymentID,
		runID:        req.RunID,
		agent:        agent,
		env:          env,
		vaultIDs:     slices.Clone(req.VaultIDs),
		mounts:       mounts,
		workspace:    workspace,
		prepare:      true,
	}
	return run, rec, events, nil
}

// planResources validates resources and decides where each one goes.
func (b *Backend) planResources(in []sessions.Resource, workspace string, now time.Time) ([]mount, []resourceRecord, error) {
	var mounts []mount
	var records []resourceRecord
	taken := map[string]int{}
	for i, res := range in {
		var rel string
		var err error
		switch res.Type {
		case "github_repository":
			if err := checkRepository(res); err != nil {
				return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
			}
			fallback := ""
			if res.MountPath == "" {
				if fallback, err = repositoryName(res.URL); err != nil {
					return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
				}
			}
			rel, err = resolveMountPath(res.MountPath, fallback)
		case "file":
			if err := checkFileID(b.cfg.FilesDir, res.FileID); err != nil {
				return nil, nil, runError(sessions.ErrFileNotFound, "resources[%d]: file %q: %v", i, res.FileID, err)
			}
			rel, err = resolveMountPath(res.MountPath, defaultFileMount(res.FileID))
		case "memory_store":
			return nil, nil, runError(sessions.ErrSelfHostedResourcesUnsupport,
				"resources[%d]: memory_store resources are not supported by the local session backend", i)
		default:
			return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: unknown resource type %q", i, res.Type)
		}
		if err != nil {
			return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
		}
		if j, dup := taken[rel]; dup {
			return nil, nil, runError(sessions.ErrSessionCreationRejected,
				"resources[%d]: mount path %q is already used by resources[%d]", i, rel, j)
		}
		taken[rel] = i
		resourceID := newID(resourceIDPrefix)
		mounts = append(mounts, mount{resource: res, rel: rel, resourceID: resourceID})
		records = append(records, resourceRecord{
			ID:        resourceID,
			Type:      res.Type,
			URL:       res.URL,
			Checkout:  res.Checkout,
			FileID:    res.FileID,
			MountPath: filepath.Join(workspace, rel),
			CreatedAt: now,
		})
	}
	return mounts, records, nil
}

// admit stores the session and, when it has initial events or resources to
// materialize, starts its first turn (running, or rescheduling while every
// slot is taken). A session with neither starts idle, its workspace made
// here. The lock is held across the store write so that no message sent to
// the new session can overtake its start.
func (b *Backend) admit(run *sessionRun, rec *sessionRecord, input [][]byte) error {
	now := rec.CreatedAt
	events := slices.Clone(input)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return runError(sessions.ErrSessionCreationRejected, "the local session backend is shutting down")
	}
	as := &activeSession{run: run, done: make(chan struct{})}
	for _, ev := range input {
		as.pending = append(as.pending, json.RawMessage(ev))
	}
	start := len(input) > 0 || len(run.mounts) > 0
	switch {
	case !start:
		if err := os.MkdirAll(run.workspace, 0o700); err != nil {
			return runError(sessions.ErrUnknown, "creating the workspace: %v", err)
		}
		run.prepare = false
		rec.Status = statusIdle
	case b.trySlotLocked():
		as.hasSlot = true
		rec.Status, rec.StartedAt = statusRunning, &now
		events = append(events, statusEvent(eventStatusRunning, now))
	default:
		as.waiter = b.enqueueLocked()
		rec.Status = statusRescheduling
		events = append(events, statusEvent(eventStatusRescheduled, now))
	}
	if err := b.store.create(rec, events); err != nil {
		b.giveBackLocked(as)
		if errors.Is(err, syscall.ENOSPC) {
			// Kept as is so the API can answer 507 (an unknown_error for a run).
			b.observeDisk(err)
			return fmt.Errorf("storing the session: %w", err)
		}
		return runError(sessions.ErrUnknown, "storing the session: %v", err)
	}
	if start {
		as.status = rec.Status
		b.active[run.id] = as
		b.startRunner(run.id, as)
	}
	return nil
}

// giveBackLocked returns the slot (or the place in the queue) of a session
// that could not be stored.
func (b *Backend) giveBackLocked(as *activeSession) {
	if as.hasSlot {
		as.hasSlot = false
		b.releaseLocked()
	}
	if as.waiter != nil && !b.abandonLocked(as.waiter) {
		b.releaseLocked()
	}
	as.waiter = nil
}
