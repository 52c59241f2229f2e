// Package ledger is xnum's order ledger: one JSON entry per order id in a
// JetStream KeyValue bucket, holding the request, the status, every number
// bought, the buy attempt in flight, the delivery's claim, what settled an
// attempt in doubt and what drives the order.
//
// Every change is a compare-and-set on the revision the entry was read at
// (kv.Create for a new order, kv.Update with the last revision otherwise).
// A lost compare-and-set returns ErrStale: another writer moved the order,
// and the caller must read it again and decide again, never overwrite. The
// exceptions are changes that are facts whatever else happened — a bought
// number, a refusal of an attempt, a published event or message — which
// re-read and re-apply themselves.
//
// order.go holds the entry's types, transitions.go the changes a worker,
// the intake and an operator make, errors.go the errors.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
)

// Ledger reads and changes orders in a KV bucket.
type Ledger struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithClock replaces time.Now for timestamps and lease decisions.
func WithClock(now func() time.Time) Option { return func(l *Ledger) { l.now = now } }

// New returns a Ledger over kv (queue.Queue.Ledger).
func New(kv jetstream.KeyValue, opts ...Option) *Ledger {
	l := &Ledger{kv: kv, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Now is the ledger's clock.
func (l *Ledger) Now() time.Time { return l.now().UTC() }

// Get reads an order. A missing order is ErrNotFound.
func (l *Ledger) Get(ctx context.Context, id string) (*Order, error) {
	if events.ValidateOrderID(id) != nil {
		return nil, ErrNotFound // no such key can exist
	}
	e, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get", err)
	}
	return decode(e)
}

func decode(e jetstream.KeyValueEntry) (*Order, error) {
	var o Order
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return nil, fmt.Errorf("ledger: entry %s revision %d: %w", e.Key(), e.Revision(), err)
	}
	o.Revision = e.Revision()
	return &o, nil
}

// List returns the orders with one of statuses (all orders when none is
// given), oldest first. It reads the bucket in one pass: a watch of every
// key delivers each entry's latest revision, then says it is done.
func (l *Ledger) List(ctx context.Context, statuses ...Status) ([]*Order, error) {
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, unavailable("list", err)
	}
	defer w.Stop()
	var out []*Order
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, unavailable("list", ctx.Err())
		}
		if e == nil {
			break // every entry has been delivered
		}
		o, err := decode(e)
		if err != nil {
			return nil, err
		}
		if len(statuses) == 0 || slices.Contains(statuses, o.Status) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].OrderID < out[j].OrderID
	})
	return out, nil
}

// CreateOrGet makes the entry of a new order, accepted, atomically: of two
// callers with the same id only one creates it. When the id exists it returns
// the existing order and created false, with ErrPayloadConflict if the
// existing request has another hash.
func (l *Ledger) CreateOrGet(ctx context.Context, req events.OrderRequested) (o *Order, created bool, err error) {
	if err := req.Validate(); err != nil {
		return nil, false, err
	}
	now := l.Now()
	return l.create(ctx, &Order{
		OrderID: req.OrderID, Request: req, RequestHash: Hash(req), Status: StatusAccepted,
		Quantity: req.Quantity, Numbers: []Number{}, CreatedAt: now, UpdatedAt: now,
	})
}

// CreateFailed makes the entry of an order that failed before anything was
// bought: an invalid or undecodable request, under the id it named. hash is
// Hash(req) or RawHash of the message. Like CreateOrGet it returns an existing
// order instead, with ErrPayloadConflict if its hash differs.
func (l *Ledger) CreateFailed(ctx context.Context, req events.OrderRequested, hash string, reason events.Error) (*Order, bool, error) {
	if err := events.ValidateOrderID(req.OrderID); err != nil {
		return nil, false, err
	}
	now := l.Now()
	return l.create(ctx, &Order{
		OrderID: req.OrderID, Request: req, RequestHash: hash, Status: StatusFailed,
		Quantity: req.Quantity, Numbers: []Number{}, Error: &reason, CreatedAt: now, UpdatedAt: now,
	})
}

func (l *Ledger) create(ctx context.Context, o *Order) (*Order, bool, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, false, err
	}
	rev, err := l.kv.Create(ctx, o.OrderID, b)
	if err == nil {
		o.Revision = rev
		return o, true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, false, unavailable("create", err)
	}
	existing, err := l.Get(ctx, o.OrderID)
	if err != nil {
		return nil, false, err
	}
	if existing.RequestHash != o.RequestHash {
		return existing, false, ErrPayloadConflict
	}
	return existing, false, nil
}

// errUnchanged tells update that change had nothing to do.
var errUnchanged = errors.New("unchanged")

// update writes change(o') for a copy o' of o at o's revision. When change
// returns errUnchanged nothing is written and o is returned.
func (l *Ledger) update(ctx context.Context, o *Order, change func(*Order) error) (*Order, error) {
	n := o.clone()
	if err := change(n); err == errUnchanged {
		return o, nil
	} else if err != nil {
		return nil, err
	}
	n.UpdatedAt = l.Now()
	b, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	rev, err := l.kv.Update(ctx, n.OrderID, b, o.Revision)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err) {
		return nil, ErrStale
	}
	if err != nil {
		return nil, unavailable("update", err)
	}
	n.Revision = rev
	return n, nil
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// reapply runs update, and on ErrStale reads the order again and runs it on
// the new revision, for changes that hold whatever else changed.
func (l *Ledger) reapply(ctx context.Context, o *Order, change func(*Order) error) (*Order, error) {
	for {
		n, err := l.update(ctx, o, change)
		if !errors.Is(err, ErrStale) {
			return n, err
		}
		if o, err = l.Get(ctx, o.OrderID); err != nil {
			return nil, err
		}
	}
}
