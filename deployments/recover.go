package deployments

import (
	"context"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// recoverLookupTimeout bounds the search for the sessions of every intent
// one recovery resolves, all of them together: in a cluster the new leader
// resolves its dead predecessor's intents before it loads its plans, so a
// slow or unreachable upstream must not hold up the fires due meanwhile
// (they are fired as misfires within schedule.misfire_grace, 60s by
// default). A run whose session was not found in time records
// unknown_error, as before the search existed.
const recoverLookupTimeout = 10 * time.Second

// recoverLookupConcurrency bounds the searches in flight: an upstream
// search is a list request or a few, and a killed leader can leave a burst.
const recoverLookupConcurrency = 8

// sessionsOfRuns asks finder for the session of each run whose intent is
// being resolved. found maps a run to its session; unsure maps a run to why
// the finder could not tell (logged here, and written into the run's
// unknown_error message). A run in neither map has no session.
func (s *Service) sessionsOfRuns(finder sessions.RunSessionFinder, pending []Run) (found, unsure map[string]string) {
	found, unsure = map[string]string{}, map[string]string{}
	timeout := s.recoverLookupTimeout
	if timeout <= 0 {
		timeout = recoverLookupTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = make(chan struct{}, recoverLookupConcurrency)
	)
	for _, run := range pending {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			id, err := finder.SessionOfRun(ctx, sessions.RunRef{DeploymentID: run.DeploymentID, RunID: run.ID,
				Agent: run.Agent, Started: run.CreatedAt})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				unsure[run.ID] = err.Error()
				s.log.Warn("could not tell whether an interrupted run created its session; recording unknown_error",
					"deployment_id", run.DeploymentID, "run_id", run.ID, "error", err)
			case id != "":
				found[run.ID] = id
			}
		})
	}
	wg.Wait()
	return found, unsure
}
