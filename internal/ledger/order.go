package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/xnum-dev/xnum/events"
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
// it waits for its doubt to be settled.
func (s Status) Stopped() bool { return s.Terminal() || s == StatusInDoubt }

// Order is one ledger entry.
type Order struct {
	OrderID string                `json:"orderId"`
	Request events.OrderRequested `json:"request"`
	// RequestHash identifies the request's payload: the same id with another
	// hash is another order and a conflict.
	RequestHash string `json:"requestHash"`
	Status      Status `json:"status"`
	Quantity    int    `json:"quantity"`
	// Numbers are the numbers bought, in buying order; never more than
	// Quantity.
	Numbers []Number `json:"numbers"`
	// Excess are numbers the order's attempts bought past its quantity: a
	// buy whose answer came after its attempt had been settled as having
	// bought nothing and the order had moved on. They are the order's (the
	// cloud sold them to it) but not what it asked for.
	Excess []Number `json:"excess,omitempty"`
	// Attempts counts the buy attempts recorded; the last one's Seq.
	Attempts int `json:"attempts"`
	// Attempt is the buy in flight: recorded before BuySecretNo is called,
	// cleared with its result. One left behind means the outcome is unknown.
	Attempt *Attempt `json:"attempt,omitempty"`
	// Claim is the delivery that may buy for the order until LeaseUntil.
	Claim *Claim `json:"claim,omitempty"`
	// Deliveries counts the deliveries that claimed the order, so an order
	// whose trigger has no delivery count of its own (an FC event, SQS) ends
	// after a bounded number of them.
	Deliveries int `json:"deliveries"`
	// Error is why the order failed or is in doubt.
	Error *events.Error `json:"error,omitempty"`
	// LastError is the last refusal a retry got past, for operators.
	LastError *events.Error `json:"lastError,omitempty"`
	// Settlements record who settled which attempt in doubt, and how.
	Settlements []Settlement `json:"settlements,omitempty"`
	// Unsettled says why the cloud's number reports did not settle an
	// attempt in doubt by themselves; that attempt is left to an operator.
	Unsettled *Unsettled `json:"unsettled,omitempty"`
	// RequestPublished: an order.requested message of the order is in the
	// stream (the intake's, or one a worker was delivered).
	RequestPublished bool `json:"requestPublished"`
	// MessageSeq is the stream sequence of the newest order.requested message
	// known for the order: while the consumer has not acknowledged past it, a
	// message may still drive the order.
	MessageSeq uint64 `json:"messageSeq,omitempty"`
	// Redriven counts the times the order was published again because
	// nothing drove it (redrive); RedrivenAt is the last.
	Redriven   int       `json:"redriven,omitempty"`
	RedrivenAt time.Time `json:"redrivenAt,omitzero"`
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
	// Published: its event (number.purchased, or number.excess for an
	// excess number) is in the stream.
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
	// AnswerBy is when the call's answer could last arrive (its timeout):
	// a number the cloud sold later is not this attempt's.
	AnswerBy time.Time `json:"answerBy,omitzero"`
	// RecordBy is when the worker stops trying to record the answer: until
	// then a late answer may still land, so "nothing bought" is not
	// believed before it.
	RecordBy time.Time `json:"recordBy,omitzero"`
}

// Bounds of attempts recorded before AnswerBy and RecordBy existed: the
// worker's defaults then.
const (
	legacyAnswerWithin = 20 * time.Second
	legacyRecordWithin = 2*time.Minute + legacyAnswerWithin
)

// AnsweredBy is AnswerBy, or its default for an attempt that has none.
func (a *Attempt) AnsweredBy() time.Time {
	if a.AnswerBy.IsZero() {
		return a.StartedAt.Add(legacyAnswerWithin)
	}
	return a.AnswerBy
}

// RecordedBy is RecordBy, or its default for an attempt that has none.
func (a *Attempt) RecordedBy() time.Time {
	if a.RecordBy.IsZero() {
		return a.StartedAt.Add(legacyRecordWithin)
	}
	return a.RecordBy
}

// Claim is a delivery's lease on an order.
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
	// By is who settled it: an operator's name, "worker" when the buy's own
	// answer arrived late, "reports" when the cloud's number reports did.
	By string `json:"by"`
	// Evidence is what proved the outcome: a QuerySecretNoDetail answer, a
	// NumberManagementReport, an operator's statement.
	Evidence  string    `json:"evidence"`
	SettledAt time.Time `json:"settledAt"`
}

// Unsettled is why automatic settlement gave up on an attempt in doubt: no
// report of a number fitting it came within the wait, or the reports did
// not tell one number apart. The order stays in doubt for an operator.
type Unsettled struct {
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// NumberList returns the bought numbers (not the excess).
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
func (o *Order) Unpublished() []Number { return unpublished(o.Numbers) }

// UnpublishedExcess returns the excess numbers whose event is not yet
// published.
func (o *Order) UnpublishedExcess() []Number { return unpublished(o.Excess) }

func unpublished(ns []Number) []Number {
	var out []Number
	for _, n := range ns {
		if !n.Published {
			out = append(out, n)
		}
	}
	return out
}

// Holds reports whether secretNo is among the order's numbers, its excess
// included.
func (o *Order) Holds(secretNo string) bool {
	is := func(n Number) bool { return n.SecretNo == secretNo }
	return slices.ContainsFunc(o.Numbers, is) || slices.ContainsFunc(o.Excess, is)
}

// ClaimedByOther reports whether someone but owner holds a lease live at t.
func (o *Order) ClaimedByOther(owner string, t time.Time) bool {
	return o.Claim != nil && o.Claim.Owner != owner && t.Before(o.Claim.LeaseUntil)
}

// Claimed reports whether anyone holds a lease live at t.
func (o *Order) Claimed(t time.Time) bool { return o.Claim != nil && t.Before(o.Claim.LeaseUntil) }

// OwnedBy reports whether owner holds the claim of a processing order (live
// or not: a lapsed lease is still the owner's until someone takes it over).
func (o *Order) OwnedBy(owner string) bool {
	return o.Status == StatusProcessing && o.Claim != nil && o.Claim.Owner == owner
}

func (o *Order) clone() *Order {
	c := *o
	c.Numbers = slices.Clone(o.Numbers)
	c.Excess = slices.Clone(o.Excess)
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
	if o.Unsettled != nil {
		u := *o.Unsettled
		c.Unsettled = &u
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
