package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	stdoutReadBufferLen = 64 << 10
	stderrExcerptBytes  = 1 << 10 // quoted in a session.error
	sinkQueuedEvents    = 64      // lines waiting for the sink before the harness is pushed back
	sinkBatchEvents     = 256     // most events committed in one transaction
	sinkBatchBytes      = 1 << 20
)

// pumpStdout turns stdout lines into events until EOF. Past the output cap
// it stops the harness and discards the rest.
func (b *Backend) pumpStdout(r io.Reader, limit int64, sink *eventSink, stop context.CancelCauseFunc) {
	var total int64
	capped := false
	_ = readLines(r, maxHarnessEventLineBytes, func(line []byte, size int) {
		if capped {
			return
		}
		total += int64(size)
		if total > limit {
			capped = true
			stop(errOutputCapped)
			return
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			return
		}
		sink.add(harnessLineEvent(line, b.cfg.Now()))
	})
}

// readLines reads r to the end and calls emit for every line without its
// "\n". A line longer than maxLine is cut to maxLine bytes; size is always
// what the whole line took in the stream.
func readLines(r io.Reader, maxLine int, emit func(line []byte, size int)) error {
	br := bufio.NewReaderSize(r, stdoutReadBufferLen)
	var long []byte
	inLong, size := false, 0
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if errors.Is(err, bufio.ErrBufferFull) {
			long, inLong = appendBounded(long, chunk, maxLine), true
			continue
		}
		line := chunk
		if inLong {
			long = appendBounded(long, chunk, maxLine)
			line = long
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > maxLine {
			line = line[:maxLine]
		}
		if size > 0 {
			emit(line, size)
		}
		long, inLong, size = long[:0], false, 0
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func appendBounded(dst, src []byte, max int) []byte {
	room := max - len(dst)
	if room <= 0 {
		return dst
	}
	if len(src) > room {
		src = src[:room]
	}
	return append(dst, src...)
}

// stderrExcerpt is the end of the stderr tail, for a session.error.
func stderrExcerpt(tail []byte) string {
	text := strings.TrimSpace(string(tail))
	if len(text) > stderrExcerptBytes {
		text = "…" + strings.TrimLeft(text[len(text)-stderrExcerptBytes:], "\n")
	}
	return strings.ToValidUTF8(text, "�")
}

// eventSink records harness events from one goroutine, committing whatever
// has queued up in one transaction. The bounded queue pushes back on the
// harness (through its stdout pipe) when bbolt is slower than its output.
type eventSink struct {
	b         *Backend
	sessionID string
	events    chan []byte
	done      chan struct{}
	fail      context.CancelCauseFunc
}

func (b *Backend) newEventSink(sessionID string, fail context.CancelCauseFunc) *eventSink {
	s := &eventSink{b: b, sessionID: sessionID, events: make(chan []byte, sinkQueuedEvents),
		done: make(chan struct{}), fail: fail}
	go s.loop()
	return s
}

func (s *eventSink) add(ev []byte) { s.events <- ev }

// close flushes the queued events and stops the sink.
func (s *eventSink) close() {
	close(s.events)
	<-s.done
}

func (s *eventSink) loop() {
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
		if _, err := s.b.store.appendEvents(s.sessionID, batch, func(rec *sessionRecord) error {
			rec.UpdatedAt = now
			return nil
		}); err != nil {
			failed = true
			s.fail(fmt.Errorf("recording harness output: %w", err))
			continue
		}
		s.b.notify(s.sessionID)
	}
}
