package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// MarkPublished records that an order.requested message of the order is in
// the stream at sequence seq (0 when unknown). It is a fact, so it holds
// whatever else changed meanwhile.
func (l *Ledger) MarkPublished(ctx context.Context, o *Order, seq uint64) (*Order, error) {
	return l.reapply(ctx, o, func(n *Order) error {
		if n.RequestPublished && n.MessageSeq >= seq {
			return errUnchanged
		}
		n.RequestPublished, n.MessageSeq = true, max(n.MessageSeq, seq)
		return nil
	})
}

// MarkRedriven counts a new redrive of an order nobody drives: it is a
// compare-and-set, so of several sweepers that found the order only one
// publishes it again. The order's new Redriven numbers the message.
func (l *Ledger) MarkRedriven(ctx context.Context, o *Order) (*Order, error) {
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "redrive", Status: n.Status, Reason: "it is stopped"}
		}
		n.Redriven++
		n.RedrivenAt = now
		return nil
	})
}

// Claim gives owner, one delivery of the order, the order until now+lease:
// status processing. It fails with a *ClaimedError while another owner's
// lease is live, and with a *StateError when the order is stopped. A lapsed
// lease is taken over; owner's own claim is renewed. seq is the stream
// sequence of the message being delivered (0 for an event trigger's): the
// message is in the stream, and may drive the order until it is acked.
func (l *Ledger) Claim(ctx context.Context, o *Order, owner string, lease time.Duration, seq uint64) (*Order, error) {
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if n.Status.Stopped() {
			return &StateError{Op: "claim", Status: n.Status, Reason: "it is stopped"}
		}
		if n.ClaimedByOther(owner, now) {
			return &ClaimedError{Owner: n.Claim.Owner, Until: n.Claim.LeaseUntil}
		}
		if n.Claim == nil || n.Claim.Owner != owner {
			n.Deliveries++
		}
		n.Status = StatusProcessing
		n.Claim = &Claim{Owner: owner, LeaseUntil: now.Add(lease)}
		if seq > 0 {
			n.RequestPublished, n.MessageSeq = true, max(n.MessageSeq, seq)
		}
		return nil
	})
}

func owned(n *Order, owner, op string) error {
	if !n.OwnedBy(owner) {
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

// Bounds are the times an attempt is given: its owner's lease is renewed
// for Lease, its answer may arrive for Answer (the buy's timeout), and the
// answer may be recorded for Record after that.
type Bounds struct {
	Lease, Answer, Record time.Duration
}

// BeginAttempt records that owner is about to call BuySecretNo once, as
// attempt Attempts+1, and renews the lease. It must succeed before the
// call: it is what lets anyone who finds the order later know a buy may
// have happened, and until when its answer may land.
func (l *Ledger) BeginAttempt(ctx context.Context, o *Order, owner string, b Bounds) (*Order, error) {
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
		answerBy := now.Add(b.Answer)
		n.Attempt = &Attempt{Seq: n.Attempts, Owner: owner, StartedAt: now, AnswerBy: answerBy, RecordBy: answerBy.Add(b.Record)}
		n.Claim.LeaseUntil = now.Add(b.Lease)
		return nil
	})
}

// RecordPurchase writes the number attempt seq bought. A bought number is a
// fact, so it is written whatever happened to the order meanwhile (it
// re-reads on a lost compare-and-set), and never twice:
//   - attempt seq still in flight: the number takes the slot the attempt
//     reserved; if the order went in doubt over it, the answer settles that
//     and the order goes back to accepted;
//   - attempt seq settled meanwhile as having bought nothing (a wrong word)
//     and the order still wants a number with none in flight: it takes it;
//   - otherwise the order has what it asked for: the number is Excess.
func (l *Ledger) RecordPurchase(ctx context.Context, o *Order, seq int, r provider.BuyResult) (*Order, error) {
	if r.SecretNo == "" {
		return nil, errors.New("ledger: record purchase without a number")
	}
	now := l.Now()
	return l.reapply(ctx, o, func(n *Order) error {
		if n.Holds(r.SecretNo) {
			return errUnchanged
		}
		num := Number{SecretNo: r.SecretNo, RequestID: r.RequestID, Attempt: seq, BoughtAt: now}
		inFlight := n.Attempt != nil && n.Attempt.Seq == seq
		reserved := 0
		if n.Attempt != nil && !inFlight {
			reserved = 1 // another attempt holds a slot
		}
		switch {
		case inFlight:
			n.Numbers = append(n.Numbers, num)
		case !n.Status.Terminal() && len(n.Numbers)+reserved < n.Quantity:
			n.Numbers = append(n.Numbers, num)
		default:
			n.Excess = append(n.Excess, num)
		}
		if !inFlight {
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

// AbandonAttempt clears attempt seq after a refusal that proves nothing was
// bought, keeping why in LastError. Like RecordPurchase it is a fact about
// that attempt, so it re-reads on a lost compare-and-set: if the order went
// in doubt over seq meanwhile, the refusal settles it and the order goes
// back to accepted. If seq is no longer in flight it changes nothing.
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

// MarkReleased records that secretNo of the order id was given back to the
// provider. A failed order's numbers may be released, and an ended order's
// excess numbers; a completed order's numbers belong to its customer.
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
		is := func(x Number) bool { return x.SecretNo == secretNo }
		list := n.Excess
		i := slices.IndexFunc(list, is)
		switch {
		case i >= 0 && !n.Status.Terminal():
			return &StateError{Op: "release", Status: n.Status, Reason: "its excess numbers are released once it has ended"}
		case i < 0:
			if list, i = n.Numbers, slices.IndexFunc(n.Numbers, is); i < 0 {
				return provider.Invalid("secretNo", fmt.Sprintf("order %s holds no number %s", id, secretNo))
			}
			if n.Status != StatusFailed {
				return &StateError{Op: "release", Status: n.Status, Reason: "only a failed order's numbers may be released"}
			}
		}
		if list[i].Released == nil {
			list[i].Released = &Release{By: by, Evidence: evidence, At: now}
		}
		return nil
	})
}

// MarkNumberPublished records that secretNo's event (number.purchased, or
// number.excess) is in the stream.
func (l *Ledger) MarkNumberPublished(ctx context.Context, o *Order, secretNo string) (*Order, error) {
	return l.reapply(ctx, o, func(n *Order) error {
		for _, list := range [][]Number{n.Numbers, n.Excess} {
			for i := range list {
				if list[i].SecretNo == secretNo {
					if list[i].Published {
						return errUnchanged
					}
					list[i].Published = true
					return nil
				}
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
// (s.SecretNo takes the attempt's slot, unpublished) or not. The order goes
// back to accepted; whoever settles it must give it a driver (redrive), so
// that it buys the rest or completes. The evidence itself is checked by the
// caller (internal/reconcile): the ledger only records it.
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
		if s.Outcome == OutcomeBought && !n.Holds(s.SecretNo) {
			n.Numbers = append(n.Numbers, Number{SecretNo: s.SecretNo, Attempt: s.Attempt, BoughtAt: now})
		}
		n.Settlements = append(n.Settlements, s)
		n.Attempt = nil
		n.Status, n.Claim, n.Error, n.EventPublished = StatusAccepted, nil, nil, false
		return nil
	})
}

// LeaveUnsettled records on the order in doubt o why its attempt was not
// settled from the cloud's reports (Order.Unsettled), once per attempt: the
// order stays in doubt, left to an operator. Nothing else changes.
func (l *Ledger) LeaveUnsettled(ctx context.Context, o *Order, reason string) (*Order, error) {
	if reason == "" {
		return nil, provider.Invalid("reason", "say why the attempt is left to an operator")
	}
	now := l.Now()
	return l.update(ctx, o, func(n *Order) error {
		if n.Status != StatusInDoubt || n.Attempt == nil {
			return &StateError{Op: "leave unsettled", Status: n.Status, Reason: "no attempt is in doubt"}
		}
		if n.Unsettled != nil && n.Unsettled.Attempt == n.Attempt.Seq {
			return errUnchanged
		}
		n.Unsettled = &Unsettled{Attempt: n.Attempt.Seq, Reason: reason, At: now}
		return nil
	})
}
