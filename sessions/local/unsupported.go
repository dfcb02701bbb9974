package local

import (
	"fmt"
	"net/http"

	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// refuseEventDeltas answers a stream request that asks for event_deltas
// with a 400 before the stream opens. Previews (event_start, event_delta)
// show an event while a model produces it; a local harness's output is
// recorded as whole events, so there is nothing to preview, and a client
// silently given none would wait for deltas that never come.
func refuseEventDeltas(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Has("event_deltas") || q.Has("event_deltas[]") || len(listparams.Array(q, "event_deltas")) > 0 {
			wire.WriteError(w, http.StatusBadRequest, "event_deltas: streaming previews (event_start, event_delta) are not supported "+
				"by the local session backend, which records harness output as whole events; omit event_deltas: "+
				"every agent.message and agent.thinking arrives complete on the stream")
			return
		}
		next(w, r)
	}
}

// refuseThreads answers every /v1/sessions/{id}/threads… route: a local
// session runs one harness, with no multiagent threads.
func refuseThreads(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf(
		"%s %s: session threads are not supported by the local session backend (a local session runs one harness, "+
			"with no multiagent threads); read the session's own events at /v1/sessions/%s/events instead",
		r.Method, r.URL.Path, r.PathValue("id")))
}
