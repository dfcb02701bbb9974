package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A list cursor is the position in creation order of the next item to
// examine, so pages are stable while new items are appended: O(page) work
// per request, never a scan of everything before the cursor.
func encodeCursor(prefix string, pos int) string { return prefix + strconv.Itoa(pos) }

func decodeCursor(prefix, page string, n int) (int, error) {
	rest, ok := strings.CutPrefix(page, prefix)
	pos, err := strconv.Atoi(rest)
	if !ok || err != nil || pos < 0 || pos >= n {
		return 0, fmt.Errorf("page %q is not a cursor this list issued", page)
	}
	return pos, nil
}

type listQuery struct {
	limit int
	asc   bool
	page  string
}

func parseListQuery(q url.Values, defaultAsc bool, maxLimit int) (listQuery, error) {
	lq := listQuery{limit: 20, asc: defaultAsc, page: q.Get("page")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return lq, fmt.Errorf("limit must be an integer between 1 and %d (got %q)", maxLimit, v)
		}
		lq.limit = n
	}
	switch q.Get("order") {
	case "":
	case "asc":
		lq.asc = true
	case "desc":
		lq.asc = false
	default:
		return lq, fmt.Errorf("order must be asc or desc (got %q)", q.Get("order"))
	}
	return lq, nil
}

// timeRange is the created_at[gt|gte|lt|lte] filter.
type timeRange struct {
	gt, gte, lt, lte *time.Time
}

func parseTimeRange(q url.Values) (timeRange, error) {
	var tr timeRange
	for key, dst := range map[string]**time.Time{
		"created_at[gt]": &tr.gt, "created_at[gte]": &tr.gte, "created_at[lt]": &tr.lt, "created_at[lte]": &tr.lte,
	} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return tr, fmt.Errorf("%s must be an RFC 3339 time (got %q)", key, v)
			}
			*dst = &t
		}
	}
	return tr, nil
}

// tooOld and tooNew say that t is outside the range on one side, which lets
// a walk in time order stop early.
func (tr timeRange) tooOld(t time.Time) bool {
	return (tr.gt != nil && !t.After(*tr.gt)) || (tr.gte != nil && t.Before(*tr.gte))
}

func (tr timeRange) tooNew(t time.Time) bool {
	return (tr.lt != nil && !t.Before(*tr.lt)) || (tr.lte != nil && t.After(*tr.lte))
}

type sessionPage struct {
	Data     []json.RawMessage `json:"data"`
	NextPage *string           `json:"next_page"`
	PrevPage *string           `json:"prev_page"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	lq, err := parseListQuery(q, false, 100)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	tr, err := parseTimeRange(q)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	agentID := q.Get("agent_id")

	s.mu.Lock()
	order := s.state.sessionOrder
	s.mu.Unlock()
	pos, step := len(order)-1, -1
	if lq.asc {
		pos, step = 0, 1
	}
	if lq.page != "" {
		if pos, err = decodeCursor("sesncur_", lq.page, len(order)); err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	page := sessionPage{Data: []json.RawMessage{}}
	for ; pos >= 0 && pos < len(order); pos += step {
		sess := order[pos]
		if (!lq.asc && tr.tooOld(sess.CreatedAt)) || (lq.asc && tr.tooNew(sess.CreatedAt)) {
			pos = -1 // nothing further can match
			break
		}
		if len(page.Data) == lq.limit {
			break
		}
		if (agentID != "" && sess.AgentID != agentID) || tr.tooOld(sess.CreatedAt) || tr.tooNew(sess.CreatedAt) {
			continue
		}
		page.Data = append(page.Data, sess.wire)
	}
	if pos >= 0 && pos < len(order) {
		next := encodeCursor("sesncur_", pos)
		page.NextPage = &next
	}
	writeJSON(w, http.StatusOK, page)
}

type eventPage struct {
	Data     []json.RawMessage `json:"data"`
	NextPage *string           `json:"next_page"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	lq, err := parseListQuery(q, true, 1000)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	types := append(q["types[]"], q["types"]...)
	id := r.PathValue("session_id")
	s.mu.Lock()
	sess, ok := s.state.sessions[id]
	var events []Event
	if ok {
		events = sess.events
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("session %s not found", id))
		return
	}
	pos, step := 0, 1
	if !lq.asc {
		pos, step = len(events)-1, -1
	}
	if lq.page != "" {
		if pos, err = decodeCursor("evcur_", lq.page, len(events)); err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	page := eventPage{Data: []json.RawMessage{}}
	for ; pos >= 0 && pos < len(events) && len(page.Data) < lq.limit; pos += step {
		if len(types) > 0 && !slices.Contains(types, events[pos].Type) {
			continue
		}
		page.Data = append(page.Data, events[pos].JSON)
	}
	if pos >= 0 && pos < len(events) {
		next := encodeCursor("evcur_", pos)
		page.NextPage = &next
	}
	writeJSON(w, http.StatusOK, page)
}
