package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// verdict is what becomes of a message after processing.
type verdict int

const (
	vAck   verdict = iota // done: ack, or nil to an event trigger
	vRetry                // deliver again after delay: nak, or an error to an event trigger
	vTerm                 // never deliver again, no order to fail: term with reason
	vAbort                // the fault hook stopped us: do nothing more
)

type result struct {
	verdict verdict
	delay   time.Duration
	err     error // why, for vRetry, vTerm and vAbort
}

func ack() result { return result{verdict: vAck} }

func terminate(err error) result { return result{verdict: vTerm, err: err} }

func aborted(err error) result { return result{verdict: vAbort, err: err} }

func (w *Worker) retryAfter(delay time.Duration, err error) result {
	return result{verdict: vRetry, delay: min(max(delay, 100*time.Millisecond), w.nakDelay), err: err}
}

// delivery is one delivery of an order's message, as its trigger tells it.
type delivery struct {
	// owner is the claim this delivery holds, kept across re-reads of the
	// order: facts others write on the order never cost it its claim.
	owner string
	// seq is the message's stream sequence (0: an event trigger's message).
	seq uint64
	// event: an event trigger's delivery, which the ledger counts.
	event bool
	// last: no redelivery follows, so giving up must end the order.
	last bool
	// endNow: the message ran out of deliveries; end the order without
	// buying (max-deliveries advisory).
	endNow bool
	// progress tells the trigger the message is being worked on.
	progress func()
	// rereads counts re-reads after another writer moved the order.
	rereads int
}

func (d *delivery) touch() {
	if d.progress != nil {
		d.progress()
	}
}

// maxRereads bounds how often one delivery re-reads an order that others
// keep moving; then it lets the message come back later.
const maxRereads = 8

// detachTimeout bounds the writes that finish a step already taken (record
// a number, publish it, end the order) once the caller's context is
// cancelled: stopping a worker must not leave a step half done.
const detachTimeout = 15 * time.Second

func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
}

// process takes one order.requested message through the state machine.
func (w *Worker) process(ctx context.Context, body []byte, d delivery) result {
	ctx = messageContext(ctx, body)
	start := time.Now()
	w.stats.messages.Add(1)
	d.owner = w.newOwner()
	r := w.decide(ctx, body, &d)
	w.obs.Delivery(ctx, r.verdict.String(), time.Since(start))
	switch r.verdict {
	case vAck:
		w.stats.acked.Add(1)
	case vRetry:
		w.stats.retried.Add(1)
	case vTerm:
		w.stats.terminated.Add(1)
	case vAbort:
		w.stats.aborted.Add(1)
	}
	return r
}

func (w *Worker) decide(ctx context.Context, body []byte, d *delivery) result {
	req, err := events.DecodeOrderRequested(body)
	if err != nil {
		id, _ := events.PeekOrderID(body)
		if events.ValidateOrderID(id) != nil {
			w.log.WarnContext(ctx, "order message refused: it does not decode and names no usable order id", "reason", err.Error())
			return terminate(err)
		}
		return w.failNew(ctx, events.OrderRequested{OrderID: id}, ledger.RawHash(body), err)
	}
	if err := req.Validate(); err != nil {
		if events.ValidateOrderID(req.OrderID) != nil {
			w.log.WarnContext(ctx, "order message refused: no usable order id", "reason", err.Error())
			return terminate(err)
		}
		return w.failNew(ctx, req, ledger.Hash(req), err)
	}
	o, _, err := w.ledger.CreateOrGet(ctx, req)
	if errors.Is(err, ledger.ErrPayloadConflict) {
		w.log.WarnContext(ctx, "order message refused: its id belongs to an order with another payload, which stays untouched",
			"orderId", req.OrderID)
		return terminate(err)
	}
	if err != nil {
		return w.retryAfter(w.nakDelay, err)
	}
	return w.run(ctx, o, d)
}

// failNew ends an order whose request is invalid or undecodable: nothing is
// bought, the ledger records it failed with the reason, order.failed says so.
func (w *Worker) failNew(ctx context.Context, req events.OrderRequested, hash string, cause error) result {
	reason := events.ErrorOf(cause)
	o, created, err := w.ledger.CreateFailed(ctx, req, hash, reason)
	if errors.Is(err, ledger.ErrPayloadConflict) {
		w.log.WarnContext(ctx, "order message refused: invalid, and its id belongs to another order, which stays untouched",
			"orderId", req.OrderID, "reason", reason.Message)
		return terminate(err)
	}
	if err != nil {
		return w.retryAfter(w.nakDelay, err)
	}
	if created {
		w.stats.failed.Add(1)
		w.obs.Order(ctx, Failed, w.age(o.CreatedAt))
		w.log.InfoContext(ctx, "order failed: invalid request", "orderId", o.OrderID, "code", reason.Code, "reason", reason.Message)
	}
	return w.publishStopped(ctx, o)
}

// run claims the order for d and works on it, or replays a stopped one.
func (w *Worker) run(ctx context.Context, o *ledger.Order, d *delivery) result {
	for {
		if o.Status.Stopped() {
			return w.publishStopped(ctx, o)
		}
		now := w.now()
		if o.ClaimedByOther(d.owner, now) {
			return w.retryAfter(o.Claim.LeaseUntil.Sub(now)+50*time.Millisecond,
				&ledger.ClaimedError{Owner: o.Claim.Owner, Until: o.Claim.LeaseUntil})
		}
		c, err := w.ledger.Claim(ctx, o, d.owner, w.lease, d.seq)
		if err == nil {
			o = c
			break
		}
		if !errors.Is(err, provider.ErrConflict) {
			return w.retryAfter(w.nakDelay, err)
		}
		// Stale, claimed meanwhile, or stopped meanwhile: look again.
		if o, err = w.reread(ctx, o.OrderID, d); err != nil {
			return w.retryAfter(w.nakDelay, err)
		}
	}
	if d.event && o.Deliveries >= w.eventDeliveries {
		d.last = true
	}
	w.log.DebugContext(ctx, "order claimed", "orderId", o.OrderID, "owner", d.owner, "bought", len(o.Numbers), "quantity", o.Quantity, "deliveries", o.Deliveries)
	if err := w.fault(ctx, AfterClaim, o.OrderID); err != nil {
		return aborted(err)
	}
	return w.work(ctx, o, d)
}

// reread reads the order again after another writer moved it.
func (w *Worker) reread(ctx context.Context, id string, d *delivery) (*ledger.Order, error) {
	d.rereads++
	if d.rereads > maxRereads {
		return nil, fmt.Errorf("worker: order %s keeps changing under us", id)
	}
	return w.ledger.Get(ctx, id)
}

// rerun starts over from a fresh read, under the same claim.
func (w *Worker) rerun(ctx context.Context, id string, d *delivery) result {
	o, err := w.reread(ctx, id, d)
	if err != nil {
		return w.retryAfter(w.nakDelay, err)
	}
	return w.run(ctx, o, d)
}

// work takes a claimed order to its end, or as far as this delivery can.
func (w *Worker) work(ctx context.Context, o *ledger.Order, d *delivery) result {
	if a := o.Attempt; a != nil {
		// Whoever made this attempt stopped before writing its result: it may
		// have bought a number. Never buy again on top of it.
		return w.stopInDoubt(ctx, o, d, events.Error{Code: string(provider.ErrInDoubt), Message: fmt.Sprintf(
			"buy attempt %d started at %s by %s has no recorded result; it may have bought a number",
			a.Seq, a.StartedAt.Format(time.RFC3339), a.Owner)})
	}
	o, r := w.publishNumbers(ctx, o)
	if r != nil {
		return w.giveBack(ctx, o, d, *r)
	}
	if o.Remaining() == 0 {
		return w.endCompleted(ctx, o, d)
	}
	if d.endNow {
		return w.endFailed(ctx, o, d, events.Error{Code: events.CodeMaxDeliveries,
			Message: fmt.Sprintf("the order's message was delivered as often as allowed; %d of %d numbers bought", len(o.Numbers), o.Quantity)})
	}
	if r := w.checkStock(ctx, o, d); r != nil {
		return *r
	}
	return w.buyAll(ctx, o, d)
}

// checkStock asks whether the provider has the numbers the order still
// wants. It returns nil to go on, or how the delivery ends.
func (w *Worker) checkStock(ctx context.Context, o *ledger.Order, d *delivery) *result {
	q := o.Request.RemainQuery()
	rem, err := w.inv.Remain(ctx, q)
	var r result
	switch {
	case err != nil && waitsForLater(provider.KindOf(err)):
		r = w.later(ctx, o, d, fmt.Errorf("inventory check: %w", err))
	case err != nil:
		why := events.ErrorOf(err)
		why.Message = "inventory check: " + why.Message
		r = w.endFailed(ctx, o, d, why)
	case rem.Amount < int64(o.Remaining()):
		r = w.endFailed(ctx, o, d, events.Error{Code: string(provider.ErrInsufficientInventory), Message: fmt.Sprintf(
			"%d numbers left for city %s, specId %d, prefix %q; %d still wanted", rem.Amount, q.City, q.SpecID, q.Prefix, o.Remaining())})
	default:
		return nil
	}
	return &r
}

// buyAll buys the order's remaining numbers one attempt at a time.
func (w *Worker) buyAll(ctx context.Context, o *ledger.Order, d *delivery) result {
	refusals := 0
	for o.Remaining() > 0 {
		// The deadline is checked again after the rate's wait, which a
		// limiter shared by many workers may make long.
		if err := w.mayStartBuy(ctx); err != nil {
			return w.giveBack(ctx, o, d, w.retryAfter(0, err))
		}
		if err := w.limiter.Wait(ctx); err != nil {
			return w.giveBack(ctx, o, d, w.retryAfter(0, err))
		}
		if err := w.mayStartBuy(ctx); err != nil {
			return w.giveBack(ctx, o, d, w.retryAfter(0, err))
		}
		d.touch()
		next, err := w.beginAttempt(ctx, o, d.owner)
		if errors.Is(err, provider.ErrConflict) {
			return w.rerun(ctx, o.OrderID, d)
		}
		if err != nil {
			return w.giveBack(ctx, o, d, w.retryAfter(w.nakDelay, err))
		}
		var (
			end     *result
			refusal error
		)
		if o, end, refusal = w.buyOne(ctx, next, d); end != nil {
			return *end
		}
		if refusal == nil {
			refusals = 0
			d.touch()
			continue
		}
		refusals++
		if refusals > w.retries {
			return w.later(ctx, o, d, fmt.Errorf("buy refused %d times in a row: %w", refusals, refusal))
		}
		select {
		case <-ctx.Done():
			return w.giveBack(ctx, o, d, w.retryAfter(0, ctx.Err()))
		case <-time.After(w.backoff << (refusals - 1)):
		}
	}
	return w.endCompleted(ctx, o, d)
}

// buyOne makes the attempt o holds: one BuySecretNo call and its outcome in
// the ledger. It returns the order as it is after, and either how the
// delivery ends, or the refusal when the buy is worth trying again.
func (w *Worker) buyOne(ctx context.Context, o *ledger.Order, d *delivery) (*ledger.Order, *result, error) {
	id, seq := o.OrderID, o.Attempt.Seq
	w.stats.buys.Add(1)
	res, buyErr := w.buy(ctx, o.Request.BuyRequest())
	if buyErr == nil {
		o, end := w.bought(ctx, o, seq, res, d)
		return o, end, nil
	}
	kind := provider.KindOf(buyErr)
	if !nothingBought(kind) {
		w.obs.Buy(ctx, InDoubt, kind)
		w.log.WarnContext(ctx, "buy outcome unknown", "orderId", id, "attempt", seq, "error", buyErr.Error())
		why := events.ErrorOf(buyErr)
		why.Code, why.Message = string(provider.ErrInDoubt), fmt.Sprintf("buy attempt %d: %s", seq, why.Message)
		r := w.stopInDoubt(ctx, o, d, why)
		return o, &r, nil
	}
	w.stats.refused.Add(1)
	w.obs.Buy(ctx, Refused, kind)
	o, err := w.abandon(ctx, o, seq, buyErr)
	if err != nil {
		r := w.retryAfter(w.nakDelay, err)
		return o, &r, nil
	}
	if !o.OwnedBy(d.owner) {
		w.settledByAnswer(ctx, o, seq)
		// The refusal came after another delivery put the order in doubt
		// over this attempt; it settled that. Give the order a driver.
		r := w.moved(ctx, o, d)
		return o, &r, nil
	}
	if !waitsForLater(kind) {
		w.log.InfoContext(ctx, "buy refused", "orderId", id, "attempt", seq, "code", string(kind), "error", o.LastError.Message)
		r := w.endFailed(ctx, o, d, *o.LastError)
		return o, &r, nil
	}
	w.log.DebugContext(ctx, "buy refused, retrying", "orderId", id, "attempt", seq, "code", string(kind))
	return o, nil, buyErr
}

// bought records the number attempt seq bought and publishes it.
func (w *Worker) bought(ctx context.Context, o *ledger.Order, seq int, res provider.BuyResult, d *delivery) (*ledger.Order, *result) {
	id := o.OrderID
	w.stats.bought.Add(1)
	w.obs.Buy(ctx, Bought, "")
	if err := w.fault(ctx, AfterBuy, id); err != nil {
		r := aborted(err)
		return o, &r
	}
	o, err := w.record(ctx, o, seq, res)
	if err != nil {
		// The number is only in this log line now. The attempt stays in the
		// ledger, so the next delivery puts the order in doubt and an
		// operator settles it with this number.
		w.log.ErrorContext(ctx, "bought number not written to the ledger", "orderId", id, "secretNo", res.SecretNo,
			"providerRequestId", res.RequestID, "attempt", seq, "error", err.Error())
		r := w.retryAfter(w.nakDelay, err)
		return o, &r
	}
	w.log.InfoContext(ctx, "number bought", "orderId", id, "secretNo", res.SecretNo, "providerRequestId", res.RequestID,
		"attempt", seq, "bought", len(o.Numbers), "quantity", o.Quantity)
	if err := w.fault(ctx, AfterRecord, id); err != nil {
		r := aborted(err)
		return o, &r
	}
	if !o.OwnedBy(d.owner) {
		w.settledByAnswer(ctx, o, seq)
		// Our lease lapsed while we bought: another delivery put the order in
		// doubt, and this answer settled it (or the order had moved on and
		// the number is excess).
		r := w.moved(ctx, o, d)
		return o, &r
	}
	o, r := w.publishNumbers(ctx, o)
	if r != nil {
		r2 := w.giveBack(ctx, o, d, *r)
		return o, &r2
	}
	return o, nil
}

// moved handles an order that left this delivery's claim while it bought:
// an order our late answer took out of doubt gets a driver (its message
// was acked when it went in doubt), then this delivery starts over.
func (w *Worker) moved(ctx context.Context, o *ledger.Order, d *delivery) result {
	if o.Status == ledger.StatusAccepted && o.Claim == nil {
		if _, err := w.redrive.Order(ctx, o); err == nil {
			w.stats.redriven.Add(1)
			w.obs.Redriven(ctx, 1)
		} else {
			w.log.WarnContext(ctx, "order settled by a late answer not published again; the sweep will", "orderId", o.OrderID, "error", err.Error())
		}
	}
	return w.rerun(ctx, o.OrderID, d)
}

// beginAttempt records the next attempt. When the write's answer is lost
// (NATS went away) it reads the order back: if the attempt is there, ours,
// the write landed and the buy may go ahead; otherwise it did not, and the
// caller gives up the claim. Either way no attempt is left recorded without
// its owner knowing.
func (w *Worker) beginAttempt(ctx context.Context, o *ledger.Order, owner string) (*ledger.Order, error) {
	bounds := ledger.Bounds{Lease: w.lease, Answer: w.buyTimeout, Record: w.recordTimeout}
	wctx, cancel := context.WithTimeout(ctx, w.writeTimeout())
	next, err := w.ledger.BeginAttempt(wctx, o, owner, bounds)
	cancel()
	if err == nil || provider.KindOf(err) != provider.ErrUnavailable {
		return next, err
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	now, rerr := persist(rctx, w.writeTimeout(), func(c context.Context) (*ledger.Order, error) { return w.ledger.Get(c, o.OrderID) })
	switch {
	case rerr != nil:
		return nil, err
	case now.Attempt != nil && now.Attempt.Owner == owner && now.Attempt.Seq == o.Attempts+1 && now.OwnedBy(owner):
		return now, nil // it landed, and the order is still ours
	case now.Revision == o.Revision:
		return nil, err // it did not
	}
	return nil, ledger.ErrStale // someone else moved the order
}

// writeTimeout bounds one ledger write, well within a lease, so a write lost
// with a dying connection is retried before the claim lapses.
func (w *Worker) writeTimeout() time.Duration { return min(5*time.Second, w.lease/4) }

// nothingBought tells the kinds of buy errors that prove no number was
// bought. The provider maps every answer that is not a documented refusal
// before it acted to ErrInDoubt; an unmapped error may have bought too.
func nothingBought(k provider.Kind) bool {
	switch k {
	case provider.ErrInvalidParameter, provider.ErrUnauthorized, provider.ErrNotFound, provider.ErrConflict,
		provider.ErrInsufficientInventory, provider.ErrThrottled, provider.ErrUnavailable:
		return true
	}
	return false
}

// waitsForLater tells the refusals after which an order waits for a later
// delivery instead of failing: the provider's passing trouble, and our own
// credentials or permissions, which an operator fixes without the order
// changing (a rotated key must not fail every order in flight). The last
// delivery still ends such an order.
func waitsForLater(k provider.Kind) bool {
	return k.Retryable() || k == provider.ErrUnauthorized
}

// mayStartBuy refuses to start a buy when the caller is stopping or its
// deadline would cut the buy short and leave it in doubt.
func (w *Worker) mayStartBuy(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < w.buyTimeout {
		return fmt.Errorf("worker: %v left before the deadline, a buy may take %v", time.Until(dl).Round(time.Millisecond), w.buyTimeout)
	}
	return nil
}

// buy calls BuySecretNo once. A cancelled caller does not cut it short: the
// answer is what tells whether money was spent.
func (w *Worker) buy(ctx context.Context, r provider.BuyRequest) (provider.BuyResult, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.buyTimeout)
	defer cancel()
	return w.buyer.Buy(bctx, r)
}

// record writes a bought number, retrying through NATS outages for up to
// the record timeout.
func (w *Worker) record(ctx context.Context, o *ledger.Order, seq int, res provider.BuyResult) (*ledger.Order, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.recordTimeout)
	defer cancel()
	return persist(rctx, w.writeTimeout(), func(c context.Context) (*ledger.Order, error) { return w.ledger.RecordPurchase(c, o, seq, res) })
}

// abandon clears an attempt that a refusal answered, retrying through NATS
// outages: left behind, it would put the order in doubt for nothing.
func (w *Worker) abandon(ctx context.Context, o *ledger.Order, seq int, cause error) (*ledger.Order, error) {
	rctx, cancel := detached(ctx)
	defer cancel()
	return persist(rctx, w.writeTimeout(), func(c context.Context) (*ledger.Order, error) {
		return w.ledger.AbandonAttempt(c, o, seq, events.ErrorOf(cause))
	})
}

// persist retries write while NATS is unavailable, each try bounded by
// timeout, until ctx ends.
func persist(ctx context.Context, timeout time.Duration, write func(context.Context) (*ledger.Order, error)) (*ledger.Order, error) {
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		o, err := write(actx)
		cancel()
		if err == nil || provider.KindOf(err) != provider.ErrUnavailable {
			return o, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// later gives the order back for a later delivery after refusals that may
// pass, or ends it when no delivery follows.
func (w *Worker) later(ctx context.Context, o *ledger.Order, d *delivery, cause error) result {
	if d.last {
		why := events.ErrorOf(cause)
		why.Message = "gave up on the last delivery: " + why.Message
		return w.endFailed(ctx, o, d, why)
	}
	w.log.InfoContext(ctx, "order waits for a later delivery", "orderId", o.OrderID, "reason", cause.Error())
	return w.giveBack(ctx, o, d, w.retryAfter(w.nakDelay, cause))
}

// giveBack releases d's claim, so the next delivery need not wait for the
// lease to lapse, and returns r. The release is best effort: a lease lapses
// anyway. A claim with an attempt in flight is kept: that attempt must be
// settled first.
func (w *Worker) giveBack(ctx context.Context, o *ledger.Order, d *delivery, r result) result {
	if o == nil || !o.OwnedBy(d.owner) || o.Attempt != nil {
		return r
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if _, err := w.ledger.Release(rctx, o, d.owner); err != nil {
		w.log.DebugContext(ctx, "claim not released; its lease will lapse", "orderId", o.OrderID, "error", err.Error())
	}
	return r
}
