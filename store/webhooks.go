package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// The webhook outbox. A change that a webhook reports appends its event in
// the change's own write transaction (AppendWebhookEvent), so an event exists
// exactly when its change committed. The webhooks package then fans each
// event out to one delivery per matching endpoint and drives the deliveries
// through the due index; everything it needs to resume is on disk, so a
// backlog costs no memory.

// Its buckets are declared in schema.go.

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// maxKeptAttempts bounds the attempt log of one delivery (the default
// schedule makes 8 attempts; operator retries add more).
const maxKeptAttempts = 20

// WebhookEvent is one committed change to announce.
type WebhookEvent struct {
	Seq       uint64    `json:"-"`
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	ObjectID  string    `json:"object_id"`
	CreatedAt time.Time `json:"created_at"`
	// Endpoints are the URLs the event was fanned out to (retention needs them).
	Endpoints []string `json:"endpoints,omitempty"`
}

// WebhookAttempt is one POST of a delivery.
type WebhookAttempt struct {
	At         time.Time     `json:"at"`
	StatusCode int           `json:"status_code,omitempty"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration"`
}

// WebhookDelivery is one event for one endpoint.
type WebhookDelivery struct {
	Endpoint  string           `json:"endpoint"`
	Seq       uint64           `json:"seq"`
	EventID   string           `json:"event_id"`
	EventType string           `json:"event_type"`
	Status    string           `json:"status"`
	Attempts  []WebhookAttempt `json:"attempts,omitempty"` // newest last, the last maxKeptAttempts
	// AttemptCount counts every attempt ever made; Retries only the failed
	// ones since fan-out or the last operator retry (the schedule position).
	AttemptCount int `json:"attempt_count"`
	Retries      int `json:"retries"`
	// Requeues counts operator retries, so an attempt that was in flight
	// when one happened does not overwrite it.
	Requeues      int       `json:"requeues,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time `json:"created_at"`
	FinishedAt    time.Time `json:"finished_at"`
}

// AddAttempt appends to the attempt log, keeping its bound.
func (d *WebhookDelivery) AddAttempt(a WebhookAttempt) {
	d.AttemptCount++
	d.Attempts = append(d.Attempts, a)
	if len(d.Attempts) > maxKeptAttempts {
		d.Attempts = append([]WebhookAttempt(nil), d.Attempts[len(d.Attempts)-maxKeptAttempts:]...)
	}
}

// AppendWebhookEvent adds e to the outbox: one sequence number and one put
// in one bucket, the whole cost a reported change pays. A second append of
// the same event id (a transaction function run again) is dropped at
// fan-out, so delivery stays once per id.
func (tx *Tx) AppendWebhookEvent(e WebhookEvent) error { return appendWebhookEvent(tx.tx, e) }

// AppendWebhookEvent adds e to the webhook outbox inside a namespace's
// write transaction, so a session status change and its event commit
// together. The outbox is the store's bucket, not the namespace's: this is
// the one door into it.
func (t *NamespaceTx) AppendWebhookEvent(e WebhookEvent) error { return appendWebhookEvent(t.tx, e) }

func appendWebhookEvent(t kvTx, e WebhookEvent) error {
	if e.ID == "" || e.Type == "" {
		return errors.New("append webhook event: empty id or type")
	}
	outbox := t.Bucket(bucketWebhookOutbox.name)
	seq, err := outbox.NextSequence()
	if err != nil {
		return err
	}
	e.Endpoints = nil
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return outbox.Put(u64(seq), doc)
}

// OutboxWebhookEvents returns up to limit events not yet fanned out, oldest first.
func (tx *Tx) OutboxWebhookEvents(limit int) ([]WebhookEvent, error) {
	var out []WebhookEvent
	c := tx.bucket(bucketWebhookOutbox).Cursor()
	for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
		var e WebhookEvent
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode webhook outbox entry %d: %w", readU64(k), err)
		}
		e.Seq = readU64(k)
		out = append(out, e)
	}
	return out, nil
}

// CountWebhookOutbox is the number of events not yet fanned out (from page
// statistics: exact in a read transaction).
func (tx *Tx) CountWebhookOutbox() int { return tx.bucket(bucketWebhookOutbox).KeyN() }

// FanOutWebhookEvent moves outbox entry e into the event log and creates a
// pending delivery, due at now, for each endpoint. An entry no longer in the
// outbox is left alone, and a duplicate of an event id already fanned out is
// dropped, so running it twice is harmless.
func (tx *Tx) FanOutWebhookEvent(e WebhookEvent, endpoints []string, now time.Time) error {
	outbox, ids := tx.bucket(bucketWebhookOutbox), tx.bucket(bucketWebhookEventIDs)
	k := u64(e.Seq)
	if outbox.Get(k) == nil {
		return nil
	}
	if err := outbox.Delete(k); err != nil {
		return err
	}
	if ids.Get([]byte(e.ID)) != nil {
		return nil
	}
	for _, url := range endpoints {
		d := WebhookDelivery{Endpoint: url, Seq: e.Seq, EventID: e.ID, EventType: e.Type, Status: DeliveryPending,
			NextAttemptAt: now, CreatedAt: now}
		if err := tx.PutWebhookDelivery(d); err != nil {
			return err
		}
	}
	e.Endpoints = endpoints
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := tx.bucket(bucketWebhookEvents).Put(k, doc); err != nil {
		return err
	}
	return ids.Put([]byte(e.ID), k)
}

func (tx *Tx) webhookEvent(seq uint64) (WebhookEvent, bool, error) {
	v := tx.bucket(bucketWebhookEvents).Get(u64(seq))
	if v == nil {
		return WebhookEvent{}, false, nil
	}
	var e WebhookEvent
	if err := json.Unmarshal(v, &e); err != nil {
		return WebhookEvent{}, false, fmt.Errorf("decode webhook event %d: %w", seq, err)
	}
	e.Seq = seq
	return e, true, nil
}

// GetWebhookEvent returns the event with sequence number seq.
func (tx *Tx) GetWebhookEvent(seq uint64) (WebhookEvent, bool, error) { return tx.webhookEvent(seq) }

// WebhookEventByID returns the event with the given id.
func (tx *Tx) WebhookEventByID(id string) (WebhookEvent, bool, error) {
	v := tx.bucket(bucketWebhookEventIDs).Get([]byte(id))
	if v == nil {
		return WebhookEvent{}, false, nil
	}
	return tx.webhookEvent(readU64(v))
}

func deliveryKey(endpoint string, seq uint64) []byte { return prefixed(endpoint, u64(seq)) }

func dueKey(endpoint string, at time.Time, seq uint64) []byte {
	return prefixed(endpoint, append(timeKey(at), u64(seq)...))
}

func finishedKey(at time.Time, endpoint string, seq uint64) []byte {
	return append(timeKey(at), deliveryKey(endpoint, seq)...)
}

// GetWebhookDelivery returns the delivery of event seq to endpoint.
func (tx *Tx) GetWebhookDelivery(endpoint string, seq uint64) (WebhookDelivery, bool, error) {
	return decodeDelivery(tx.bucket(bucketWebhookDeliveries).Get(deliveryKey(endpoint, seq)))
}

func decodeDelivery(v []byte) (WebhookDelivery, bool, error) {
	if v == nil {
		return WebhookDelivery{}, false, nil
	}
	var d WebhookDelivery
	if err := json.Unmarshal(v, &d); err != nil {
		return WebhookDelivery{}, false, fmt.Errorf("decode webhook delivery: %w", err)
	}
	return d, true, nil
}

// PutWebhookDelivery stores d and moves it between the due, failed and
// finished indexes according to its old and new state.
func (tx *Tx) PutWebhookDelivery(d WebhookDelivery) error {
	if d.Endpoint == "" || d.Seq == 0 {
		return errors.New("put webhook delivery: empty endpoint or sequence")
	}
	deliveries := tx.bucket(bucketWebhookDeliveries)
	due, failed, finished := tx.bucket(bucketWebhookDue), tx.bucket(bucketWebhookFailed), tx.bucket(bucketWebhookFinished)
	k := deliveryKey(d.Endpoint, d.Seq)
	old, had, err := decodeDelivery(deliveries.Get(k))
	if err != nil {
		return err
	}
	if had {
		switch old.Status {
		case DeliveryPending:
			err = due.Delete(dueKey(old.Endpoint, old.NextAttemptAt, old.Seq))
		case DeliveryFailed:
			err = errors.Join(failed.Delete(k), finished.Delete(finishedKey(old.FinishedAt, old.Endpoint, old.Seq)))
		case DeliveryDelivered:
			err = finished.Delete(finishedKey(old.FinishedAt, old.Endpoint, old.Seq))
		}
		if err != nil {
			return err
		}
	}
	switch d.Status {
	case DeliveryPending:
		err = due.Put(dueKey(d.Endpoint, d.NextAttemptAt, d.Seq), nil)
	case DeliveryFailed:
		err = errors.Join(failed.Put(k, nil), finished.Put(finishedKey(d.FinishedAt, d.Endpoint, d.Seq), nil))
	case DeliveryDelivered:
		err = finished.Put(finishedKey(d.FinishedAt, d.Endpoint, d.Seq), nil)
	default:
		err = fmt.Errorf("put webhook delivery: unknown status %q", d.Status)
	}
	if err != nil {
		return err
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return deliveries.Put(k, doc)
}

// DueWebhookDeliveries returns up to limit pending deliveries of endpoint
// that are due at now, earliest first, passing over those skip names (the
// ones in flight). next is when the first pending delivery not returned and
// not skipped is due (zero when there is none).
func (tx *Tx) DueWebhookDeliveries(endpoint string, now time.Time, limit int, skip func(seq uint64) bool) (due []WebhookDelivery, next time.Time, err error) {
	prefix := prefixOf(endpoint)
	deliveries := tx.bucket(bucketWebhookDeliveries)
	c := tx.bucket(bucketWebhookDue).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		rest := k[len(prefix):]
		if len(rest) != 16 {
			continue
		}
		at, seq := timeFromKey(rest[:8]), readU64(rest[8:])
		if skip != nil && skip(seq) {
			continue
		}
		if len(due) >= limit || at.After(now) {
			return due, at, nil
		}
		d, ok, err := decodeDelivery(deliveries.Get(deliveryKey(endpoint, seq)))
		if err != nil {
			return nil, time.Time{}, err
		}
		if ok {
			due = append(due, d)
		}
	}
	return due, time.Time{}, nil
}

func countPrefix(b kvBucket, prefix []byte) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// CountWebhookPending counts pending deliveries of endpoint ("" for all:
// from page statistics, exact in a read transaction).
func (tx *Tx) CountWebhookPending(endpoint string) int {
	b := tx.bucket(bucketWebhookDue)
	if endpoint == "" {
		return b.KeyN()
	}
	return countPrefix(b, prefixOf(endpoint))
}

// CountWebhookFailed counts failed deliveries of endpoint ("" for all).
func (tx *Tx) CountWebhookFailed(endpoint string) int {
	b := tx.bucket(bucketWebhookFailed)
	if endpoint == "" {
		return b.KeyN()
	}
	return countPrefix(b, prefixOf(endpoint))
}

// WebhookDeliveryQuery filters the delivery log, newest event first.
type WebhookDeliveryQuery struct {
	Endpoint   string // "" for every endpoint
	FailedOnly bool
	Limit      int
}

// ListWebhookDeliveries returns deliveries matching q, newest event first.
func (tx *Tx) ListWebhookDeliveries(q WebhookDeliveryQuery) ([]WebhookDelivery, error) {
	deliveries := tx.bucket(bucketWebhookDeliveries)
	var out []WebhookDelivery
	if q.FailedOnly {
		// Failed deliveries are few: collect them from their index, then order.
		prefix := []byte(nil)
		if q.Endpoint != "" {
			prefix = prefixOf(q.Endpoint)
		}
		c := tx.bucket(bucketWebhookFailed).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			d, ok, err := decodeDelivery(deliveries.Get(k))
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, d)
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Seq > out[j].Seq })
		if len(out) > q.Limit {
			out = out[:q.Limit]
		}
		return out, nil
	}
	c := tx.bucket(bucketWebhookEvents).Cursor()
	for k, v := c.Last(); k != nil && len(out) < q.Limit; k, v = c.Prev() {
		var e WebhookEvent
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode webhook event: %w", err)
		}
		for _, url := range e.Endpoints {
			if q.Endpoint != "" && url != q.Endpoint {
				continue
			}
			d, ok, err := decodeDelivery(deliveries.Get(deliveryKey(url, readU64(k))))
			if err != nil {
				return nil, err
			}
			if ok && len(out) < q.Limit {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// PruneWebhooks deletes up to limit deliveries that finished before cutoff,
// then up to limit events older than cutoff with no delivery left. It
// returns how many records it deleted.
func (tx *Tx) PruneWebhooks(cutoff time.Time, limit int) (int, error) {
	deliveries := tx.bucket(bucketWebhookDeliveries)
	finished := tx.bucket(bucketWebhookFinished)
	n := 0
	upper := timeKey(cutoff)
	var doomed [][]byte
	c := finished.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], upper) < 0 && len(doomed) < limit; k, _ = c.Next() {
		doomed = append(doomed, append([]byte(nil), k...))
	}
	for _, k := range doomed {
		dk := k[8:]
		if err := errors.Join(finished.Delete(k), deliveries.Delete(dk), tx.bucket(bucketWebhookFailed).Delete(dk)); err != nil {
			return n, err
		}
		n++
	}
	events, ids := tx.bucket(bucketWebhookEvents), tx.bucket(bucketWebhookEventIDs)
	var gone []WebhookEvent
	ec := events.Cursor()
	for k, v := ec.First(); k != nil && len(gone) < limit; k, v = ec.Next() {
		var e WebhookEvent
		if err := json.Unmarshal(v, &e); err != nil {
			return n, fmt.Errorf("decode webhook event: %w", err)
		}
		if !e.CreatedAt.Before(cutoff) {
			break // sequence order is creation order
		}
		left := false
		for _, url := range e.Endpoints {
			if deliveries.Get(deliveryKey(url, readU64(k))) != nil {
				left = true
				break
			}
		}
		if !left {
			e.Seq = readU64(k)
			gone = append(gone, e)
		}
	}
	for _, e := range gone {
		if err := errors.Join(events.Delete(u64(e.Seq)), ids.Delete([]byte(e.ID))); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// DeliveriesOfWebhookEvent returns every delivery of the event.
func (tx *Tx) DeliveriesOfWebhookEvent(e WebhookEvent) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	for _, url := range e.Endpoints {
		d, ok, err := tx.GetWebhookDelivery(url, e.Seq)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// RequeueWebhookDelivery makes the delivery of event seq to endpoint
// pending and due at now with a fresh retry schedule, creating it (and
// adding the endpoint to the event) when the event never went there. Its
// attempt log is kept.
func (tx *Tx) RequeueWebhookDelivery(seq uint64, endpoint string, now time.Time) error {
	e, ok, err := tx.webhookEvent(seq)
	if err != nil || !ok {
		return err
	}
	d, had, err := tx.GetWebhookDelivery(endpoint, seq)
	if err != nil {
		return err
	}
	if !had {
		d = WebhookDelivery{Endpoint: endpoint, Seq: seq, EventID: e.ID, EventType: e.Type, CreatedAt: now}
		e.Endpoints = append(e.Endpoints, endpoint)
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := tx.bucket(bucketWebhookEvents).Put(u64(seq), doc); err != nil {
			return err
		}
	}
	d.Status, d.NextAttemptAt, d.Retries, d.FinishedAt = DeliveryPending, now, 0, time.Time{}
	d.Requeues++
	return tx.PutWebhookDelivery(d)
}
