package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the store's layout (store/store.go), read here from
// backups and from the file of a stopped daemon, never from a live one.
var (
	bucketDeployments   = []byte("deployments")
	bucketRuns          = []byte("runs")
	bucketScheduledRuns = []byte("runs_by_scheduled_at")
	bucketIntents       = []byte("run_intents")
)

// storedRun is the part of a stored run document the checks read.
type storedRun struct {
	ID           string     `json:"id"`
	DeploymentID string     `json:"deployment_id"`
	Trigger      string     `json:"trigger"`
	ScheduledAt  *time.Time `json:"scheduled_at"`
	SessionID    string     `json:"session_id"`
	Error        *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	CreatedAt time.Time `json:"created_at"`
}

func (r storedRun) errorType() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Type
}

// fireKey identifies a scheduled fire.
type fireKey struct {
	deploymentID string
	scheduledAt  int64 // unix nanoseconds
}

// dbScan is what one read of a database file found.
type dbScan struct {
	checkErrs   []error // bbolt tx.Check
	deployments int
	runs        map[string]storedRun
	intents     []storedRun
	// claims maps a scheduled fire to the run id holding it.
	claims map[fireKey]string
	// problems are inconsistencies between runs, claims and intents.
	problems []string
	// duplicateFires are scheduled fires with more than one run.
	duplicateFires []string
}

// scanDB opens a database file read-only (a backup, or the file of a daemon
// that is not running), runs bbolt's consistency check and reads runs,
// intents and fire claims.
func scanDB(path string) (*dbScan, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	s := &dbScan{runs: map[string]storedRun{}, claims: map[fireKey]string{}}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			s.checkErrs = append(s.checkErrs, err)
		}
		for _, name := range [][]byte{bucketDeployments, bucketRuns, bucketScheduledRuns, bucketIntents} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
		}
		s.deployments = tx.Bucket(bucketDeployments).Stats().KeyN
		if err := tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var r storedRun
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("run %s: %w", k, err)
			}
			if r.ID != string(k) {
				s.problems = append(s.problems, fmt.Sprintf("run stored under %s has id %s", k, r.ID))
			}
			s.runs[r.ID] = r
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIntents).ForEach(func(k, v []byte) error {
			var in struct {
				Run storedRun `json:"run"`
			}
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("intent %s: %w", k, err)
			}
			s.intents = append(s.intents, in.Run)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketScheduledRuns).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k)-i-1 != 8 {
				s.problems = append(s.problems, fmt.Sprintf("malformed fire claim key %q", k))
				return nil
			}
			s.claims[fireKey{string(k[:i]), int64(binary.BigEndian.Uint64(k[i+1:]))}] = string(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", path, err)
	}
	s.crossCheck()
	return s, nil
}

// crossCheck finds scheduled fires with two runs and claims that do not
// match their runs.
func (s *dbScan) crossCheck() {
	intentIDs := map[string]bool{}
	for _, in := range s.intents {
		intentIDs[in.ID] = true
		if _, ok := s.runs[in.ID]; ok {
			s.problems = append(s.problems, fmt.Sprintf("run %s is both recorded and an open intent", in.ID))
		}
	}
	byFire := map[fireKey][]string{}
	for _, r := range s.runs {
		if r.Trigger != "schedule" {
			continue
		}
		if r.ScheduledAt == nil {
			s.problems = append(s.problems, fmt.Sprintf("scheduled run %s has no scheduled_at", r.ID))
			continue
		}
		k := fireKey{r.DeploymentID, r.ScheduledAt.UnixNano()}
		byFire[k] = append(byFire[k], r.ID)
		if holder := s.claims[k]; holder != r.ID {
			s.problems = append(s.problems, fmt.Sprintf("scheduled run %s (%s at %s) is not the claim holder (%q)",
				r.ID, r.DeploymentID, r.ScheduledAt.UTC().Format(time.RFC3339), holder))
		}
	}
	for k, ids := range byFire {
		if len(ids) > 1 {
			s.duplicateFires = append(s.duplicateFires, fmt.Sprintf("%s at %s: runs %v",
				k.deploymentID, time.Unix(0, k.scheduledAt).UTC().Format(time.RFC3339), ids))
		}
	}
	for k, id := range s.claims {
		if _, ok := s.runs[id]; !ok && !intentIDs[id] {
			s.problems = append(s.problems, fmt.Sprintf("fire claim %s at %s points at run %s, which is neither recorded nor an intent",
				k.deploymentID, time.Unix(0, k.scheduledAt).UTC().Format(time.RFC3339), id))
		}
	}
}
