// Package ledger is xnum's order ledger: one JSON entry per order id in a
// JetStream KeyValue bucket, holding the request, the status, every number
// bought, the buy attempt in flight, the worker's claim and what settled an
// attempt in doubt.
//
// Every change is a compare-and-set on the revision the entry was read at
// (kv.Create for a new order, kv.Update with the last revision otherwise).
// A lost compare-and-set returns ErrStale: another writer moved the order,
// and the caller must read it again and decide again, never overwrite. The
// two exceptions are changes that are facts whatever else happened —
// RecordPurchase and the published flags — which re-read and re-apply
// themselves.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Status is where an order is.
type Status string

const (
	StatusAccepted   Status = "accepted"   // taken in, waiting for a worker (again)
	StatusProcessing Status = "processing" // a worker holds the claim
	StatusCompleted  Status = "completed"  // all numbers bought; terminal
	StatusFailed     Status = "failed"     // ended without all numbers; terminal
	StatusInDoubt    Status = "in_doubt"   // a buy's outcome is unknown; waits for Settle
)

// Terminal reports whether the order has ended for good.
func (s Status) Terminal() bool { return s == StatusCompleted || s == StatusFailed }

// Stopped reports whether no worker may buy for the order now: it ended, or
// it waits for an operator.
func (s Status) Stopped() bool { return s.Terminal() || s == StatusInDoubt }

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusAccepted, StatusProcessing, StatusCompleted, StatusFailed, StatusInDoubt:
		return true
	}
	return false
}

// Order is one ledger entry.
type Order struct {
	OrderID string                `json:"orderId"`
	Request events.OrderRequested `json:"request"`
	// RequestHash identifies the request's payload: the same id with another
	// hash is another order and a conflict.
	RequestHash string `json:"requestHash"`
	Status      Status `json:"status"`
	Quantity    int    `json:"quantity"`
	// Numbers are the numbers bought, in buying order.
	Numbers []Number `json:"numbers"`
	// Attempts counts the buy attempts recorded; the last one's Seq.
	Attempts int `json:"attempts"`
	// Attempt is the buy in flight: recorded before BuySecretNo is called,
	// cleared with its result. One left behind means the outcome is unknown.
	Attempt *Attempt `json:"attempt,omitempty"`
	// Claim is the worker that may buy for the order until LeaseUntil.
	Claim *Claim `json:"claim,omitempty"`
	// Error is why the order failed or is in doubt.
	Error *events.Error `json:"error,omitempty"`
	// LastError is the last refusal a retry got past, for operators.
	LastError *events.Error `json:"lastError,omitempty"`
	// Settlements record who settled which attempt in doubt, and how.
	Settlements []Settlement `json:"settlements,omitempty"`
	// RequestPublished: order.requested is in the stream (intake).
	RequestPublished bool `json:"requestPublished"`
	// EventPublished: the event of the current status (completed, failed or
	// in_doubt) is in the stream.
	EventPublished bool      `json:"eventPublished"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`

	// Revision is the KV revision the entry was read or written at.
	Revision uint64 `json:"-"`
}

// Number is one bought number.
type Number struct {
	SecretNo  string    `json:"secretNo"`
	RequestID string    `json:"requestId"`
	Attempt   int       `json:"attempt"`
	BoughtAt  time.Time `json:"boughtAt"`
	// Published: its number.purchased event is in the stream.
	Published bool `json:"published"`
	// Released is set once an operator gave the number back
	// (ReleaseSecretNo) after the order failed.
	Released *Release `json:"released,omitempty"`
}

// Release records who released a number, and on what evidence.
type Release struct {
	By       string    `json:"by"`
	Evidence string    `json:"evidence"`
	At       time.Time `json:"at"`
}

// Attempt is one BuySecretNo call of the order.
type Attempt struct {
	Seq       int       `json:"seq"`
	Owner     string    `json:"owner"`
	StartedAt time.Time `json:"startedAt"`
}

// Claim is a worker's lease on an order.
type Claim struct {
	Owner      string    `json:"owner"`
	LeaseUntil time.Time `json:"leaseUntil"`
}

// Outcome of a settled attempt.
type Outcome string

const (
	OutcomeBought    Outcome = "bought"     // the attempt bought SecretNo
	OutcomeNotBought Outcome = "not_bought" // the attempt bought nothing
)

// Settlement is how an attempt in doubt was settled.
type Settlement struct {
	Attempt  int     `json:"attempt"`
	Outcome  Outcome `json:"outcome"`
	SecretNo string  `json:"secretNo,omitempty"`
	// By is who settled it: an operator's name, or "worker" when the buy's
	// own answer arrived late.
	By string `json:"by"`
	// Evidence is what proved the outcome: a QuerySecretNoDetail answer, a
	// NumberManagementReport, an operator's statement.
	Evidence  string    `json:"evidence"`
	SettledAt time.Time `json:"settledAt"`
}

// NumberList returns the bought numbers.
func (o *Order) NumberList() []string {
	out := make([]string, len(o.Numbers))
	for i, n := range o.Numbers {
		out[i] = n.SecretNo
	}
	return out
}

// Remaining is how many numbers are still to buy.
func (o *Order) Remaining() int { return max(0, o.Quantity-len(o.Numbers)) }

// Unpublished returns the bought numbers whose event is not yet published.
func (o *Order) Unpublished() []Number {
	var out []Number
	for _, n := range o.Numbers {
		if !n.Published {
			out = append(out, n)
		}
	}
	return out
}

// HasNumber reports whether secretNo is among the bought numbers.
func (o *Order) HasNumber(secretNo string) bool {
	return slices.ContainsFunc(o.Numbers, func(n Number) bool { return n.SecretNo == secretNo })
}

// ClaimedBy reports whether owner holds a lease on the order that is live at t.
func (o *Order) ClaimedBy(owner string, t time.Time) bool {
	return o.Claim != nil && o.Claim.Owner == owner && t.Before(o.Claim.LeaseUntil)
}

// ClaimedByOther reports whether someone but owner holds a lease live at t.
func (o *Order) ClaimedByOther(owner string, t time.Time) bool {
	return o.Claim != nil && o.Claim.Owner != owner && t.Before(o.Claim.LeaseUntil)
}

func (o *Order) clone() *Order {
	c := *o
	c.Numbers = slices.Clone(o.Numbers)
	c.Settlements = slices.Clone(o.Settlements)
	if o.Attempt != nil {
		a := *o.Attempt
		c.Attempt = &a
	}
	if o.Claim != nil {
		cl := *o.Claim
		c.Claim = &cl
	}
	if o.Error != nil {
		e := *o.Error
		c.Error = &e
	}
	if o.LastError != nil {
		e := *o.LastError
		c.LastError = &e
	}
	return &c
}

// Hash is the request hash of o: SHA-256 over its canonical JSON (the
// OrderRequested fields in their fixed order).
func Hash(o events.OrderRequested) string {
	b, _ := json.Marshal(o) // a struct of strings, ints and a bool
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// RawHash is the request hash of a message that did not decode, so a
// repeat of the same bytes replays and anything else with its id conflicts.
func RawHash(body []byte) string {
	sum := sha256.Sum256(body)
	return "raw-sha256:" + hex.EncodeToString(sum[:])
}

// Errors of the ledger. They carry a provider.Kind.
var (
	// ErrNotFound: no order has that id.
	ErrNotFound = &provider.Error{Kind: provider.ErrNotFound, Message: "no order with that id"}
	// ErrStale: the order changed since it was read; read it again.
	ErrStale = &provider.Error{Kind: provider.ErrConflict, Message: "the order changed since it was read"}
	// ErrPayloadConflict: the id is taken by an order with another payload.
	ErrPayloadConflict = &provider.Error{Kind: provider.ErrConflict, Message: "an order with this id and another payload exists"}
)

// ClaimedError says another worker holds a live lease on the order.
type ClaimedError struct {
	Owner string
	Until time.Time
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("ledger: order claimed by %s until %s", e.Owner, e.Until.Format(time.RFC3339Nano))
}

// Unwrap puts a ClaimedError in the taxonomy as provider.ErrConflict.
func (e *ClaimedError) Unwrap() error { return provider.ErrConflict }

// StateError says a transition does not apply to the order's state.
type StateError struct {
	Op     string
	Status Status
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("ledger: cannot %s an order that is %s: %s", e.Op, e.Status, e.Reason)
}

// Unwrap puts a StateError in the taxonomy as provider.ErrConflict.
func (e *StateError) Unwrap() error { return provider.ErrConflict }

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
		return nil, queue.Unavailable("ledger get", err)
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
// given), oldest first.
func (l *Ledger) List(ctx context.Context, statuses ...Status) ([]*Order, error) {
	lister, err := l.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, queue.Unavailable("ledger list", err)
	}
	defer lister.Stop()
	var out []*Order
	for key := range lister.Keys() {
		o, err := l.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between listing and reading
		}
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
		return nil, false, queue.Unavailable("ledger create", err)
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

// Delete removes an accepted order that was never published, if it is still
// at o's revision: the intake's undo when the publish after it failed.
func (l *Ledger) Delete(ctx context.Context, o *Order) error {
	if o.Status != StatusAccepted || o.RequestPublished {
		return &StateError{Op: "delete", Status: o.Status, Reason: "only an unpublished accepted order can be undone"}
	}
	err := l.kv.Delete(ctx, o.OrderID, jetstream.LastRevision(o.Revision))
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err) {
		return ErrStale
	}
	if err != nil {
		return queue.Unavailable("ledger delete", err)
	}
	return nil
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
		return nil, queue.Unavailable("ledger update", err)
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

// MarkRequestPublished records that order.requested is in the stream.
func (l *Ledger) MarkRequestPublished(ctx context.Context, o *Order) (*Order, error) {
	return l.reapply(ctx, o, func(n *Order) error {
		if n.RequestPublished {
			return errUnchanged
		}
		n.RequestPublished = true
		return nil
	})
}

// Claim gives owner the order until now+lease: status processing. It fails
// with a *ClaimedError while another owner's lease is live, and with a
// *StateError when the order is stopped. A lapsed lease is taken over.
func (l *Ledger) Claim(ctx context.Context, o *Order, owner string, lease time.Duration) (*Order, error) {
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "claim", Status: n.Status, Reason: "it is stopped"}
		}
		if n.ClaimedByOther(owner, now) {
			return &ClaimedError{Owner: n.Claim.Owner, Until: n.Claim.LeaseUntil}
		}
		n.Status = StatusProcessing
		n.Claim = &Claim{Owner: owner, LeaseUntil: now.Add(lease)}
		return nil
	})
}

// Renew extends owner's lease to now+lease.
func (l *Ledger) Renew(ctx context.Context, o *Order, owner string, lease time.Duration) (*Order, error) {
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if err := owned(n, owner, "renew"); err != nil {
			return err
		}
		n.Claim.LeaseUntil = now.Add(lease)
		return nil
	})
}

func owned(n *Order, owner, op string) error {
	if n.Status != StatusProcessing || n.Claim == nil || n.Claim.Owner != owner {
		return &StateError{Op: op, Status: n.Status, Reason: "the caller does not hold the claim"}
	}
	return nil
}

// Release gives the claim up, back to accepted, for a later delivery to
// resume. There must be no attempt in flight.
func (l *Ledger) Release(ctx context.Context, o *Order, owner string) (*Order, error) {
	return l.update(ctx, o, func(n *Order) error {
		if err := owned(n, owner, "release"); err != nil {
			return err
		}
		if n.Attempt != nil {
			return &StateError{Op: "release", Status: n.Status, Reason: "a buy is in flight"}
		}
		n.Status, n.Claim = StatusAccepted, nil
		return nil
	})
}

// BeginAttempt records that owner is about to call BuySecretNo once, as
// attempt Attempts+1, and renews the lease. It must succeed before the
// call: it is what lets anyone who finds the order later know a buy may
// have happened.
func (l *Ledger) BeginAttempt(ctx context.Context, o *Order, owner string, lease time.Duration) (*Order, error) {
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if err := owned(n, owner, "begin a buy of"); err != nil {
			return err
		}
		switch {
		case n.Attempt != nil:
			return &StateError{Op: "begin a buy of", Status: n.Status, Reason: fmt.Sprintf("attempt %d has no result", n.Attempt.Seq)}
		case n.Remaining() == 0:
			return &StateError{Op: "begin a buy of", Status: n.Status, Reason: "all numbers are bought"}
		}
		n.Attempts++
		n.Attempt = &Attempt{Seq: n.Attempts, Owner: owner, StartedAt: now}
		n.Claim.LeaseUntil = now.Add(lease)
		return nil
	})
}

// RecordPurchase writes the number attempt seq bought. A bought number is a
// fact, so it is written whatever happened to the order meanwhile (it
// re-reads on a lost compare-and-set): if attempt seq is still in flight it
// is cleared; if the order went in doubt over it, that is settled by the
// answer and the order goes back to accepted. A number already recorded is
// not recorded twice.
func (l *Ledger) RecordPurchase(ctx context.Context, o *Order, seq int, r provider.BuyResult) (*Order, error) {
	if r.SecretNo == "" {
		return nil, errors.New("ledger: record purchase without a number")
	}
	now := l.Now()
	return l.reapply(ctx, o, func(n *Order) error {
		known := n.HasNumber(r.SecretNo)
		if !known {
			n.Numbers = append(n.Numbers, Number{SecretNo: r.SecretNo, RequestID: r.RequestID, Attempt: seq, BoughtAt: now})
		}
		if n.Attempt == nil || n.Attempt.Seq != seq {
			if known {
				return errUnchanged
			}
			return nil
		}
		n.Attempt = nil
		if n.Status == StatusInDoubt {
			n.Settlements = append(n.Settlements, Settlement{
				Attempt: seq, Outcome: OutcomeBought, SecretNo: r.SecretNo, By: "worker",
				Evidence:  "BuySecretNo answered " + r.SecretNo + " (request " + r.RequestID + ") after the order was put in doubt",
				SettledAt: now,
			})
			n.Status, n.Claim, n.Error, n.EventPublished = StatusAccepted, nil, nil, false
		}
		return nil
	})
}

// AbandonAttempt clears attempt seq after an answer that bought nothing (a
// refusal came back), keeping why in LastError. Like RecordPurchase it is a
// fact about that attempt, so it re-reads on a lost compare-and-set: if the
// order went in doubt over seq meanwhile, the refusal settles it and the
// order goes back to accepted. If seq is no longer in flight it changes
// nothing.
func (l *Ledger) AbandonAttempt(ctx context.Context, o *Order, seq int, why events.Error) (*Order, error) {
	now := l.Now()
	return l.reapply(ctx, o, func(n *Order) error {
		if n.Attempt == nil || n.Attempt.Seq != seq {
			return errUnchanged
		}
		n.Attempt, n.LastError = nil, &why
		if n.Status == StatusInDoubt {
			n.Settlements = append(n.Settlements, Settlement{
				Attempt: seq, Outcome: OutcomeNotBought, By: "worker",
				Evidence:  "BuySecretNo refused after the order was put in doubt: " + why.Code + ": " + why.Message,
				SettledAt: now,
			})
			n.Status, n.Claim, n.Error, n.EventPublished = StatusAccepted, nil, nil, false
		}
		return nil
	})
}

// MarkInDoubt stops the order because the outcome of its attempt in flight
// is unknown. The attempt stays recorded for Settle.
func (l *Ledger) MarkInDoubt(ctx context.Context, o *Order, why events.Error) (*Order, error) {
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "put in doubt", Status: n.Status, Reason: "it is stopped"}
		}
		if n.Attempt == nil {
			return &StateError{Op: "put in doubt", Status: n.Status, Reason: "no attempt is in flight"}
		}
		n.Status, n.Claim, n.Error, n.EventPublished = StatusInDoubt, nil, &why, false
		return nil
	})
}

// Fail ends the order without all its numbers. There must be no attempt in
// flight (that order is in doubt, not failed).
func (l *Ledger) Fail(ctx context.Context, o *Order, why events.Error) (*Order, error) {
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "fail", Status: n.Status, Reason: "it is stopped"}
		}
		if n.Attempt != nil {
			return &StateError{Op: "fail", Status: n.Status, Reason: fmt.Sprintf("attempt %d has no result", n.Attempt.Seq)}
		}
		n.Status, n.Claim, n.Error, n.EventPublished = StatusFailed, nil, &why, false
		return nil
	})
}

// Complete ends the order with all its numbers.
func (l *Ledger) Complete(ctx context.Context, o *Order) (*Order, error) {
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "complete", Status: n.Status, Reason: "it is stopped"}
		}
		if n.Attempt != nil || n.Remaining() > 0 {
			return &StateError{Op: "complete", Status: n.Status, Reason: fmt.Sprintf("%d of %d numbers bought", len(n.Numbers), n.Quantity)}
		}
		n.Status, n.Claim, n.Error, n.EventPublished = StatusCompleted, nil, nil, false
		return nil
	})
}

// MarkReleased records that secretNo of the failed order id was given back
// to the provider. Only a failed order's numbers may be released: a
// completed order's belong to its customer.
func (l *Ledger) MarkReleased(ctx context.Context, id, secretNo, by, evidence string) (*Order, error) {
	if by == "" || evidence == "" {
		return nil, provider.Invalid("release", "a release needs who released it and the evidence")
	}
	o, err := l.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := l.Now()
	return l.reapply(ctx, o, func(n *Order) error {
		if n.Status != StatusFailed {
			return &StateError{Op: "release", Status: n.Status, Reason: "only a failed order's numbers may be released"}
		}
		i := slices.IndexFunc(n.Numbers, func(x Number) bool { return x.SecretNo == secretNo })
		if i < 0 {
			return provider.Invalid("secretNo", fmt.Sprintf("order %s holds no number %s", id, secretNo))
		}
		if n.Numbers[i].Released == nil {
			n.Numbers[i].Released = &Release{By: by, Evidence: evidence, At: now}
		}
		return nil
	})
}

// MarkNumberPublished records that secretNo's number.purchased is in the
// stream.
func (l *Ledger) MarkNumberPublished(ctx context.Context, o *Order, secretNo string) (*Order, error) {
	return l.reapply(ctx, o, func(n *Order) error {
		for i := range n.Numbers {
			if n.Numbers[i].SecretNo == secretNo {
				if n.Numbers[i].Published {
					return errUnchanged
				}
				n.Numbers[i].Published = true
				return nil
			}
		}
		return &StateError{Op: "mark published", Status: n.Status, Reason: "number " + secretNo + " is not in the order"}
	})
}

// MarkEventPublished records that the event of status (completed, failed or
// in_doubt) is in the stream, if the order is still in that status.
func (l *Ledger) MarkEventPublished(ctx context.Context, o *Order, status Status) (*Order, error) {
	return l.reapply(ctx, o, func(n *Order) error {
		if n.Status != status {
			return &StateError{Op: "mark the event published of", Status: n.Status, Reason: "its status changed from " + string(status)}
		}
		if n.EventPublished {
			return errUnchanged
		}
		n.EventPublished = true
		return nil
	})
}

// Settle settles the attempt in doubt of order id with evidence: bought
// (s.SecretNo joins the numbers, unpublished) or not. The order goes back to
// accepted so a worker resumes it: it buys the rest, or completes it.
func (l *Ledger) Settle(ctx context.Context, id string, s Settlement) (*Order, error) {
	switch {
	case s.By == "" || s.Evidence == "":
		return nil, provider.Invalid("settlement", "a settlement needs who settled it and the evidence")
	case s.Outcome == OutcomeBought && s.SecretNo == "":
		return nil, provider.Invalid("secretNo", "a bought outcome needs the number")
	case s.Outcome != OutcomeBought && s.Outcome != OutcomeNotBought:
		return nil, provider.Invalid("outcome", "outcome must be bought or not_bought")
	}
	o, err := l.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if n.Status != StatusInDoubt || n.Attempt == nil {
			return &StateError{Op: "settle", Status: n.Status, Reason: "no attempt is in doubt"}
		}
		if s.Attempt != 0 && s.Attempt != n.Attempt.Seq {
			return &StateError{Op: "settle", Status: n.Status, Reason: fmt.Sprintf("attempt %d is in doubt, not %d", n.Attempt.Seq, s.Attempt)}
		}
		s.Attempt, s.SettledAt = n.Attempt.Seq, now
		if s.Outcome == OutcomeBought && !n.HasNumber(s.SecretNo) {
			n.Numbers = append(n.Numbers, Number{SecretNo: s.SecretNo, Attempt: s.Attempt, BoughtAt: now})
		}
		n.Settlements = append(n.Settlements, s)
		n.Attempt = nil
		n.Status, n.Claim, n.Error, n.EventPublished = StatusAccepted, nil, nil, false
		return nil
	})
}

// Proof is evidence that a number was bought into a pool at a time: a
// QuerySecretNoDetail answer (provider.NumberDetail) or a
// NumberManagementReport message (status 1, created).
type Proof struct {
	SecretNo string
	PoolKey  string // empty when the evidence does not name the pool
	City     string // empty when the evidence does not name the city
	BoughtAt time.Time
	// Source says where the proof comes from, e.g. "QuerySecretNoDetail
	// (request 8F1A…)" or "NumberManagementReport".
	Source string
}

// ProofFromDetail turns a QuerySecretNoDetail answer into a Proof.
func ProofFromDetail(d provider.NumberDetail) Proof {
	return Proof{SecretNo: d.SecretNo, PoolKey: d.PoolKey, City: d.City, BoughtAt: d.PurchaseTime,
		Source: "QuerySecretNoDetail (request " + d.RequestID + ")"}
}

// SettleBought settles the attempt in doubt of order id as having bought
// p.SecretNo, after checking the proof against the order: the number is in
// the order's pool and city (as far as the proof says), it was bought no
// earlier than the attempt began (less slack, for clock skew and the
// provider's one-second timestamps), and no order of the ledger holds it.
func (l *Ledger) SettleBought(ctx context.Context, id string, p Proof, by string, slack time.Duration) (*Order, error) {
	o, err := l.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Status != StatusInDoubt || o.Attempt == nil {
		return nil, &StateError{Op: "settle", Status: o.Status, Reason: "no attempt is in doubt"}
	}
	switch {
	case p.SecretNo == "":
		return nil, provider.Invalid("secretNo", "the proof names no number")
	case p.PoolKey != "" && p.PoolKey != o.Request.PoolKey:
		return nil, provider.Invalid("poolKey", fmt.Sprintf("number %s is in pool %s, the order buys into %s", p.SecretNo, p.PoolKey, o.Request.PoolKey))
	case p.City != "" && o.Request.City != provider.CityUniversal && !sameCity(p.City, o.Request.City):
		return nil, provider.Invalid("city", fmt.Sprintf("number %s is of city %s, the order buys in %s", p.SecretNo, p.City, o.Request.City))
	case p.BoughtAt.IsZero():
		return nil, provider.Invalid("boughtAt", "the proof has no purchase time")
	case p.BoughtAt.Before(o.Attempt.StartedAt.Add(-slack)):
		return nil, provider.Invalid("boughtAt", fmt.Sprintf("number %s was bought at %s, before attempt %d began at %s",
			p.SecretNo, p.BoughtAt.UTC().Format(time.RFC3339), o.Attempt.Seq, o.Attempt.StartedAt.Format(time.RFC3339)))
	}
	all, err := l.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, other := range all {
		if other.HasNumber(p.SecretNo) {
			return nil, &provider.Error{Kind: provider.ErrConflict, Field: "secretNo",
				Message: fmt.Sprintf("number %s already belongs to order %s", p.SecretNo, other.OrderID)}
		}
	}
	return l.Settle(ctx, id, Settlement{Attempt: o.Attempt.Seq, Outcome: OutcomeBought, SecretNo: p.SecretNo, By: by,
		Evidence: fmt.Sprintf("%s: %s in pool %s, bought at %s", p.Source, p.SecretNo, o.Request.PoolKey, p.BoughtAt.UTC().Format(time.RFC3339))})
}

// sameCity compares city names loosely: the provider may write 杭州 or 杭州市.
func sameCity(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
