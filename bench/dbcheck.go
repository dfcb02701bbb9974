package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/store"
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
	checkErrs   []error // store.VerifyFile problems
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

// scanDB checks a database file (a backup, or the file of a daemon that is
// not running) with store.VerifyFile, then opens it read-only and reads
// runs, intents and fire claims.
func scanDB(path string) (*dbScan, error) {
	s := &dbScan{runs: map[string]storedRun{}, claims: map[fireKey]string{}}
	var corrupt *store.CorruptError
	if err := store.VerifyFile(path); errors.As(err, &corrupt) {
		s.checkErrs = corrupt.Problems
	} else if err != nil {
		return nil, err
	}
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	err = st.View(func(tx *store.Tx) error {
		s.deployments = tx.DeploymentCount()
		if err := tx.ForEachRun(func(id string, doc []byte) error {
			var r storedRun
			if err := json.Unmarshal(doc, &r); err != nil {
				return fmt.Errorf("run %s: %w", id, err)
			}
			if r.ID != id {
				s.problems = append(s.problems, fmt.Sprintf("run stored under %s has id %s", id, r.ID))
			}
			s.runs[r.ID] = r
			return nil
		}); err != nil {
			return err
		}
		if err := tx.ForEachIntent(func(runID string, doc []byte) error {
			var in struct {
				Run storedRun `json:"run"`
			}
			if err := json.Unmarshal(doc, &in); err != nil {
				return fmt.Errorf("intent %s: %w", runID, err)
			}
			s.intents = append(s.intents, in.Run)
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachFireClaim(func(c store.FireClaim) error {
			if c.Key != nil {
				s.problems = append(s.problems, fmt.Sprintf("malformed fire claim key %q", c.Key))
				return nil
			}
			s.claims[fireKey{c.DeploymentID, c.ScheduledAt.UnixNano()}] = c.RunID
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
