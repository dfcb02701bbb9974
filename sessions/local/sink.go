package local

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

const (
	sinkQueuedEvents = 64  // events waiting for bbolt before the harness is pushed back
	sinkBatchEvents  = 256 // most events committed in one transaction
	sinkBatchBytes   = 1 << 20
	// eventOverheadBytes is what bbolt spends on an event besides its JSON:
	// the key (session id, '/', 8-byte sequence) and the leaf element
	// header, rounded up. The output cap counts it, so a harness printing
	// empty-ish lines cannot store more than the cap allows.
	eventOverheadBytes = 64
)

// turnSink records a turn's events from one goroutine, committing whatever
// has queued up in one transaction, and enforces the turn's limits. The
// bounded queue pushes back on the harness when bbolt is slower than it.
type turnSink struct {
	b         *Backend
	sessionID string
	maxBytes  int64
	maxEvents int64
	stop      context.CancelCauseFunc
	// redact replaces the session's credential values (a vault that
	// opted out of projection hands them to the harness) before storing.
	redact func([]byte) []byte

	events chan []byte
	done   chan struct{}

	mu      sync.Mutex
	stored  int64
	count   int64
	usage   harness.Usage
	ids     harnessIDs // the harness's own ids, replaced
	refused int        // events stored as text for their shape
	stopped bool
	err     error // why recording failed
}

var _ harness.Sink = (*turnSink)(nil)

func (b *Backend) newTurnSink(sessionID string, env Environment, stop context.CancelCauseFunc, redact func([]byte) []byte) *turnSink {
	if redact == nil {
		redact = func(b []byte) []byte { return b }
	}
	s := &turnSink{b: b, sessionID: sessionID, maxBytes: env.MaxOutputBytes, maxEvents: env.MaxEvents, redact: redact,
		stop: stop, ids: harnessIDs{}, events: make(chan []byte, sinkQueuedEvents), done: make(chan struct{})}
	go s.loop()
	return s
}

// Emit implements harness.Sink. An event not in its type's official shape
// is stored as agent.message text (the line as printed); the operator's log
// says why, once per turn, so a harness's author can fix it.
func (s *turnSink) Emit(raw json.RawMessage) error {
	s.mu.Lock()
	ev, rejected := s.ids.event(raw, s.b.cfg.Now())
	if rejected != nil {
		s.refused++
	}
	first := rejected != nil && s.refused == 1
	s.mu.Unlock()
	if first {
		s.b.log.Warn("a harness event is not in the official shape of its type; it is stored as agent.message text",
			"session_id", s.sessionID, "reason", rejected.Error())
	}
	return s.record(ev)
}

// EmitText implements harness.Sink.
func (s *turnSink) EmitText(text string) error {
	return s.record(textMessageEvent(text, s.b.cfg.Now()))
}

// record queues one stamped event, or stops the turn at its limits. What
// strict JSON readers refuse (lone surrogate escapes, NUL, invalid UTF-8
// inside a harness's own JSON) is cleaned here, the one way harness output
// is stored.
func (s *turnSink) record(ev []byte) error {
	ev = s.redact(harness.CleanJSON(ev))
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return harness.ErrStop
	}
	s.stored += int64(len(ev)) + eventOverheadBytes
	s.count++
	var cause error
	switch {
	case s.stored > s.maxBytes:
		cause = errOutputCapped
	case s.maxEvents > 0 && s.count > s.maxEvents:
		cause = errTooManyEvents
	}
	if cause != nil {
		s.stopped = true
		s.mu.Unlock()
		s.stop(cause)
		return harness.ErrStop
	}
	s.mu.Unlock()
	s.events <- ev
	return nil
}

// Usage implements harness.Sink.
func (s *turnSink) Usage(u harness.Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addUsage(&s.usage, u)
}

// ProcessStarted implements harness.Sink.
func (s *turnSink) ProcessStarted(pid int) {
	proc := describeProcess(pid, s.b.bootID)
	if proc == nil {
		return
	}
	if _, err := s.b.store.update(s.sessionID, func(rec *sessionRecord) error {
		rec.Process = proc
		return nil
	}); err != nil {
		s.b.log.Warn("recording the harness process", "session_id", s.sessionID, "error", err)
	}
}

// close flushes the queued events and usage and stops the sink.
func (s *turnSink) close() {
	s.mu.Lock()
	s.stopped = true
	refused := s.refused
	s.mu.Unlock()
	close(s.events)
	<-s.done
	s.flushUsage()
	if refused > 1 {
		s.b.log.Warn("harness events stored as agent.message text for their shape this turn",
			"session_id", s.sessionID, "events", refused)
	}
}

// failure is why recording the turn's output failed, if it did.
func (s *turnSink) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *turnSink) takeUsage() harness.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage
	s.usage = harness.Usage{}
	return u
}

func (s *turnSink) flushUsage() {
	u := s.takeUsage()
	if u == (harness.Usage{}) {
		return
	}
	if _, err := s.b.store.update(s.sessionID, func(rec *sessionRecord) error {
		addUsage(&rec.Usage, u)
		return nil
	}); err != nil {
		s.b.log.Warn("recording usage", "session_id", s.sessionID, "error", err)
	}
}

func (s *turnSink) loop() {
	defer close(s.done)
	failed := false
	for ev := range s.events {
		batch, size := [][]byte{ev}, len(ev)
	fill:
		for len(batch) < sinkBatchEvents && size < sinkBatchBytes {
			select {
			case next, ok := <-s.events:
				if !ok {
					break fill
				}
				batch, size = append(batch, next), size+len(next)
			default:
				break fill
			}
		}
		if failed {
			continue
		}
		now := s.b.cfg.Now()
		u := s.takeUsage()
		// Below the disk reserve harness output is not stored: the turn
		// stops, and the reserve keeps room for recording its end.
		err := s.b.diskErr()
		if err == nil {
			_, err = s.b.store.appendEvents(s.sessionID, batch, func(rec *sessionRecord) error {
				rec.UpdatedAt = now
				addUsage(&rec.Usage, u)
				return nil
			})
			if err != nil {
				s.b.observeDisk(err)
				if low := s.b.diskErr(); low != nil {
					err = low
				} else {
					err = fmt.Errorf("recording harness output: %w", err)
				}
			}
		}
		if err != nil {
			failed = true
			s.mu.Lock()
			s.err, s.stopped = err, true
			s.mu.Unlock()
			s.stop(err)
			continue
		}
		s.b.notify(s.sessionID)
	}
}

func addUsage(dst *harness.Usage, u harness.Usage) {
	dst.InputTokens += u.InputTokens
	dst.OutputTokens += u.OutputTokens
	dst.CacheReadInputTokens += u.CacheReadInputTokens
	dst.CacheCreation5mTokens += u.CacheCreation5mTokens
	dst.CacheCreation1hTokens += u.CacheCreation1hTokens
	dst.ListCostMicros += u.ListCostMicros
	if u.ListCostCurrency != "" {
		dst.ListCostCurrency = u.ListCostCurrency
	}
}
