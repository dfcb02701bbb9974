package local

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// The buckets this package keeps in the daemon's file, by their names in the
// store's "local" namespace (declared with their layout in store/schema.go).
const (
	bucketSessions             = "sessions"               // id → sessionRecord JSON
	bucketSessionsByCreated    = "sessions_by_created"    // created(8) id → nil
	bucketSessionsByDeployment = "sessions_by_deployment" // deployment 0x00 created(8) id → nil
	bucketEvents               = "events"                 // id '/' seq(8) → event JSON
	bucketStderr               = "stderr"                 // id → harness stderr tail
)

// Session statuses, the official values (see the package doc).
const (
	statusRescheduling = "rescheduling"
	statusRunning      = "running"
	statusIdle         = "idle"
	statusTerminated   = "terminated"
)

func isFinished(status string) bool { return status == statusIdle || status == statusTerminated }

var errSessionNotFound = errors.New("session not found")

// sessionRecord is what bbolt keeps about a session. It never holds a token
// or a vault value.
type sessionRecord struct {
	ID            string            `json:"id"`
	DeploymentID  string            `json:"deployment_id,omitempty"`
	RunID         string            `json:"run_id,omitempty"`
	Agent         sessions.AgentRef `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	VaultIDs      []string          `json:"vault_ids,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Resources     []resourceRecord  `json:"resources,omitempty"`

	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`

	ArchivedAt         *time.Time `json:"archived_at,omitempty"`
	Workspace          string     `json:"workspace"`
	WorkspaceRemovedAt *time.Time `json:"workspace_removed_at,omitempty"`

	Title  string          `json:"title,omitempty"`
	Budget json.RawMessage `json:"budget,omitempty"` // as sent, in wire shape

	// Turns counts the turns started (the next one is Turns+1).
	Turns         int           `json:"turns,omitempty"`
	TurnStartedAt *time.Time    `json:"turn_started_at,omitempty"`
	ActiveNanos   int64         `json:"active_nanos,omitempty"`  // of finished turns
	TurnEndedAt   *time.Time    `json:"turn_ended_at,omitempty"` // of the latest turn
	Usage         harness.Usage `json:"usage"`

	// LastSeq is the sequence number of the newest event (events start at 1).
	LastSeq uint64 `json:"last_seq"`
	// Node is set only on the copy in the cluster's session index (index.go):
	// the node that owns the session.
	Node string `json:"node,omitempty"`
	// LostNode and LostEvent are set on the index copy by the leader when
	// the owner's lease expired (index_lost.go): the node named and the
	// session.error event that reports it.
	LostNode  string          `json:"lost_node,omitempty"`
	LostEvent json.RawMessage `json:"lost_event,omitempty"`
	// IndexedAt is when the owner last wrote the index copy (index.go): a
	// copy written less than a lease TTL ago is not marked lost, since its
	// node was alive then (it may be returning, without a lease yet).
	IndexedAt *time.Time `json:"indexed_at,omitempty"`
	// Process identifies the running harness so a restarted daemon can stop
	// a harness the previous process left behind.
	Process *processRecord `json:"process,omitempty"`
}

// resourceRecord is a resource as the session shows it: no token.
type resourceRecord struct {
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	URL       string             `json:"url,omitempty"`
	Checkout  *sessions.Checkout `json:"checkout,omitempty"`
	FileID    string             `json:"file_id,omitempty"`
	MountPath string             `json:"mount_path"` // absolute path on this machine
	CreatedAt time.Time          `json:"created_at"`
	// UpdatedAt is set by a resource update (a token rotation); zero means
	// CreatedAt.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Pending marks a resource added to an existing session and not yet
	// materialized: the next turn copies it into the workspace first.
	Pending bool `json:"pending,omitempty"`
}

type processRecord struct {
	PID       int    `json:"pid"`        // also the process group id
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22
	BootID    string `json:"boot_id"`
}

// storedEvent is one event read back from bbolt.
type storedEvent struct {
	Seq  uint64
	JSON []byte
	eventHeader
}

// eventHeader is the part of an event JSON the backend filters on.
type eventHeader struct {
	Type        string    `json:"type"`
	ProcessedAt time.Time `json:"processed_at"`
}

// sessionStore is the persistence of sessions and their events, through the
// store's namespace handle.
type sessionStore struct {
	ns     *store.Namespace
	events EventSink     // webhook events of session changes; nil: none
	index  *sessionIndex // cluster mode: the shared index (index.go); nil on one box
}

// putListKeys writes rec's listing keys (newest first, by deployment): the
// same in this node's file and in the cluster's index copy.
func putListKeys(tx *store.NamespaceTx, rec *sessionRecord) error {
	created := createdKey(rec)
	if err := tx.Bucket(bucketSessionsByCreated).Put(created, nil); err != nil {
		return err
	}
	if rec.DeploymentID == "" {
		return nil
	}
	return tx.Bucket(bucketSessionsByDeployment).Put(deploymentKey(rec.DeploymentID, created), nil)
}

// deleteListKeys removes what putListKeys wrote.
func deleteListKeys(tx *store.NamespaceTx, rec *sessionRecord) error {
	created := createdKey(rec)
	if err := tx.Bucket(bucketSessionsByCreated).Delete(created); err != nil {
		return err
	}
	if rec.DeploymentID == "" {
		return nil
	}
	return tx.Bucket(bucketSessionsByDeployment).Delete(deploymentKey(rec.DeploymentID, created))
}

// create stores a new session with its first events.
func (s sessionStore) create(rec *sessionRecord, events [][]byte) error {
	defer s.notify()
	defer s.index.put(rec.ID) // issue 26: after the commit, into the cluster's index
	return s.ns.Update(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucketSessions).Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("session %s already exists", rec.ID)
		}
		if err := s.index.markPending(tx, rec.ID); err != nil {
			return err
		}
		if err := putListKeys(tx, rec); err != nil {
			return err
		}
		if err := putEvents(tx, rec, events); err != nil {
			return err
		}
		types := []string{event.SessionCreated}
		switch rec.Status {
		case statusRunning:
			types = append(types, event.SessionStatusRunStarted)
		case statusRescheduling:
			types = append(types, event.SessionStatusRescheduled)
		}
		return s.emit(tx, rec.ID, rec.CreatedAt, types...)
	})
}

// appendEvents adds events to a session and applies update to its record in
// one transaction. update may veto the whole change by returning an error.
func (s sessionStore) appendEvents(id string, events [][]byte, update func(*sessionRecord) error) (*sessionRecord, error) {
	var out *sessionRecord
	indexed := false
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		rec, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		beforeStatus, wasArchived := rec.Status, rec.ArchivedAt != nil
		if update != nil {
			if err := update(rec); err != nil {
				return err
			}
		}
		out = rec
		if err := putEvents(tx, rec, events); err != nil {
			return err
		}
		transitions := transitionEvents(beforeStatus, wasArchived, rec)
		// Issue 26: status, archive and record changes reach the index
		// (pending in this transaction, copied after it); event appends do not.
		if indexed = len(transitions) > 0 || update != nil && len(events) == 0; indexed {
			if err := s.index.markPending(tx, id); err != nil {
				return err
			}
		}
		return s.emit(tx, id, rec.UpdatedAt, transitions...)
	})
	if err == nil {
		s.notify()
		if indexed {
			s.index.put(id)
		}
	}
	return out, err
}

// update changes a session record without adding events.
func (s sessionStore) update(id string, update func(*sessionRecord) error) (*sessionRecord, error) {
	return s.appendEvents(id, nil, update)
}

func (s sessionStore) get(id string) (*sessionRecord, error) {
	var rec *sessionRecord
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		rec, err = getRecord(tx, id)
		return err
	})
	return rec, err
}

// eventsAfter reads up to maxCount events (and roughly maxBytes) newer than
// afterSeq, with the session record as of the same transaction.
func (s sessionStore) eventsAfter(id string, afterSeq uint64, maxCount, maxBytes int) ([]storedEvent, *sessionRecord, error) {
	var events []storedEvent
	var rec *sessionRecord
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		var err error
		if rec, err = getRecord(tx, id); err != nil {
			return err
		}
		size := 0
		var after []byte
		if afterSeq > 0 {
			after = be64(afterSeq)
		}
		tx.Bucket(bucketEvents).Scan(eventPrefix(id), after, false, func(k, v []byte) bool {
			if len(events) >= maxCount || (size >= maxBytes && len(events) > 0) {
				return false
			}
			var ev storedEvent
			if ev, err = decodeStoredEvent(k, v); err != nil {
				err = fmt.Errorf("session %s: %w", id, err)
				return false
			}
			events = append(events, ev)
			size += len(v)
			return true
		})
		return err
	})
	return events, rec, err
}

// deleteSession removes a session, its index entries, events and stderr tail.
func (s sessionStore) deleteSession(id string, at time.Time) (err error) {
	defer s.notify()
	defer func() {
		if err == nil {
			s.index.put(id) // issue 26: the record is gone, so its copy is removed
		}
	}()
	return s.ns.Update(func(tx *store.NamespaceTx) error {
		rec, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		if err := s.index.markPending(tx, id); err != nil {
			return err
		}
		if err := deleteListKeys(tx, rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketEvents).DeletePrefix(eventPrefix(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketStderr).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
			return err
		}
		return s.emit(tx, id, at, event.SessionDeleted)
	})
}

// sessionsWhere returns the records for which keep is true, oldest first.
func (s sessionStore) sessionsWhere(keep func(*sessionRecord) bool) ([]*sessionRecord, error) {
	var out []*sessionRecord
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		sessions := tx.Bucket(bucketSessions)
		return tx.Bucket(bucketSessionsByCreated).ForEach(func(k, _ []byte) error {
			rec, err := decodeRecord(sessions.Get(k[8:]))
			if err != nil {
				return fmt.Errorf("session %s: %w", k[8:], err)
			}
			if keep(rec) {
				out = append(out, rec)
			}
			return nil
		})
	})
	return out, err
}

func (s sessionStore) putStderr(id string, tail []byte) error {
	return s.ns.Update(func(tx *store.NamespaceTx) error {
		return tx.Bucket(bucketStderr).Put([]byte(id), tail)
	})
}

func (s sessionStore) stderr(id string) ([]byte, error) {
	var out []byte
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucketSessions).Get([]byte(id)) == nil {
			return errSessionNotFound
		}
		out = bytes.Clone(tx.Bucket(bucketStderr).Get([]byte(id)))
		return nil
	})
	return out, err
}

func getRecord(tx *store.NamespaceTx, id string) (*sessionRecord, error) {
	v := tx.Bucket(bucketSessions).Get([]byte(id))
	if v == nil {
		return nil, errSessionNotFound
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	return rec, nil
}

func decodeRecord(v []byte) (*sessionRecord, error) {
	var rec sessionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decoding session record: %w", err)
	}
	return &rec, nil
}

// putEvents appends events after rec.LastSeq and saves rec.
func putEvents(tx *store.NamespaceTx, rec *sessionRecord, events [][]byte) error {
	bucket := tx.Bucket(bucketEvents)
	for _, ev := range events {
		rec.LastSeq++
		if err := bucket.Put(eventKey(rec.ID, rec.LastSeq), ev); err != nil {
			return fmt.Errorf("session %s: storing event %d: %w", rec.ID, rec.LastSeq, err)
		}
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("session %s: encoding record: %w", rec.ID, err)
	}
	return tx.Bucket(bucketSessions).Put([]byte(rec.ID), v)
}

func decodeStoredEvent(k, v []byte) (storedEvent, error) {
	ev := storedEvent{Seq: binary.BigEndian.Uint64(k[len(k)-8:]), JSON: bytes.Clone(v)}
	if err := json.Unmarshal(v, &ev.eventHeader); err != nil {
		return ev, fmt.Errorf("decoding event %d: %w", ev.Seq, err)
	}
	ev.JSON = upgradeStoredEvent(ev.Type, ev.JSON)
	return ev, nil
}

func be64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// eventPrefix ends with '/', which base64url ids never contain, so one
// session's prefix never matches another session's keys.
func eventPrefix(id string) []byte { return append([]byte(id), '/') }

func eventKey(id string, seq uint64) []byte { return append(eventPrefix(id), be64(seq)...) }

func createdKey(rec *sessionRecord) []byte {
	return append(be64(uint64(rec.CreatedAt.UnixNano())), rec.ID...)
}

func deploymentPrefix(deploymentID string) []byte { return append([]byte(deploymentID), 0) }

func deploymentKey(deploymentID string, created []byte) []byte {
	return append(deploymentPrefix(deploymentID), created...)
}
