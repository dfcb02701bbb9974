package local

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkHarnessOutputToEvents measures the whole path of a harness
// stdout line: pipe, classification, batched bbolt commit. One op is one
// line of ~100 bytes.
func BenchmarkHarnessOutputToEvents(b *testing.B) {
	rig := newRig(b, []Agent{shAgent("agent_flood",
		`i=0; while [ $i -lt `+strconv.Itoa(b.N)+` ]; do i=$((i+1)); printf '%06d %090d\n' $i 0; done`)}, nil)
	b.ResetTimer()
	id := rig.create("agent_flood", nil)
	rec := rig.waitDone(id)
	b.StopTimer()
	if rec.Status != statusIdle {
		b.Fatalf("session ended %s", rec.Status)
	}
}

// BenchmarkListEventsPage reads one 100-event page from the middle of a
// 10,000-event session, as GET /v1/sessions/{id}/events does.
func BenchmarkListEventsPage(b *testing.B) {
	rig := newRig(b, nil, nil)
	const total = 10000
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	rec := &sessionRecord{ID: newID(sessionIDPrefix), Status: statusIdle, CreatedAt: now, UpdatedAt: now}
	if err := rig.b.store.create(rec, nil); err != nil {
		b.Fatal(err)
	}
	batch := make([][]byte, 0, 500)
	for i := 0; i < total; i++ {
		batch = append(batch, textMessageEvent("line "+strconv.Itoa(i), now))
		if len(batch) == cap(batch) {
			if _, err := rig.b.store.appendEvents(rec.ID, batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events, more, err := rig.b.store.listEvents(rec.ID, eventFilter{}, false, uint64(total/2), 100)
		if err != nil || len(events) != 100 || !more {
			b.Fatalf("page: %d events, more=%v, err=%v", len(events), more, err)
		}
	}
}
