package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

func done() result { return result{verdict: vAck} }

func terminate(err error) result { return result{verdict: vTerm, err: err} }

func aborted(err error) result { return result{verdict: vAbort, err: err} }

func (w *Worker) retryAfter(delay time.Duration, err error) result {
	return result{verdict: vRetry, delay: min(max(delay, 100*time.Millisecond), w.nakDelay), err: err}
}

// delivery is what the trigger tells about the message.
type delivery struct {
	// last: no redelivery follows, so giving up must end the order.
	last bool
	// endNow: the message ran out of deliveries; end the order without
	// buying (max-deliveries advisory).
	endNow bool
	// progress tells the trigger the message is being worked on.
	progress func()
	// reruns counts re-reads after another writer moved the order.
	reruns int
}

func (d *delivery) touch() {
	if d.progress != nil {
		d.progress()
	}
}

// maxReruns bounds how often one delivery re-reads an order that others keep
// moving; then it lets the message come back later.
const maxReruns = 8

// detachTimeout bounds the writes that finish a step already taken (record
// a number, publish it, end the order) once the caller's context is
// cancelled: stopping a worker must not leave a step half done.
const detachTimeout = 15 * time.Second

func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
}

// process takes one order.requested message through the state machine.
func (w *Worker) process(ctx context.Context, body []byte, d delivery) result {
	w.stats.messages.Add(1)
	r := w.decide(ctx, body, d)
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

func (w *Worker) decide(ctx context.Context, body []byte, d delivery) result {
	req, err := events.DecodeOrderRequested(body)
	if err != nil {
		id, _ := events.PeekOrderID(body)
		if events.ValidateOrderID(id) != nil {
			w.log.WarnContext(ctx, "order message refused: it does not decode and names no usable order id", "reason", err.Error())
			return terminate(err)
		}
		return w.failNew(ctx, events.OrderRequested{OrderID: id}, ledger.RawHash(body), err, d)
	}
	if err := req.Validate(); err != nil {
		if events.ValidateOrderID(req.OrderID) != nil {
			w.log.WarnContext(ctx, "order message refused: no usable order id", "reason", err.Error())
			return terminate(err)
		}
		return w.failNew(ctx, req, ledger.Hash(req), err, d)
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
func (w *Worker) failNew(ctx context.Context, req events.OrderRequested, hash string, cause error, d delivery) result {
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
		w.log.InfoContext(ctx, "order failed: invalid request", "orderId", o.OrderID, "code", reason.Code, "reason", reason.Message)
	}
	return w.finish(ctx, o)
}

// run claims the order and works on it, or replays it when it is stopped.
func (w *Worker) run(ctx context.Context, o *ledger.Order, d delivery) result {
	owner := w.newOwner()
	for i := 0; ; i++ {
		if i > 0 {
			var err error
			if o, err = w.ledger.Get(ctx, o.OrderID); err != nil {
				return w.retryAfter(w.nakDelay, err)
			}
		}
		if i >= maxReruns {
			return w.retryAfter(w.nakDelay, fmt.Errorf("worker: order %s keeps changing under us", o.OrderID))
		}
		if o.Status.Stopped() {
			return w.finish(ctx, o)
		}
		now := w.now()
		if o.ClaimedByOther(owner, now) {
			return w.retryAfter(o.Claim.LeaseUntil.Sub(now)+50*time.Millisecond,
				&ledger.ClaimedError{Owner: o.Claim.Owner, Until: o.Claim.LeaseUntil})
		}
		c, err := w.ledger.Claim(ctx, o, owner, w.lease)
		if errors.Is(err, provider.ErrConflict) { // stale, claimed meanwhile, or stopped meanwhile
			continue
		}
		if err != nil {
			return w.retryAfter(w.nakDelay, err)
		}
		o = c
		break
	}
	w.log.DebugContext(ctx, "order claimed", "orderId", o.OrderID, "owner", owner, "bought", len(o.Numbers), "quantity", o.Quantity)
	if err := w.fault(ctx, AfterClaim, o.OrderID); err != nil {
		return aborted(err)
	}
	return w.work(ctx, o, owner, d)
}

// rerun starts over from a fresh read after another writer moved the order.
func (w *Worker) rerun(ctx context.Context, id string, d delivery) result {
	d.reruns++
	if d.reruns > maxReruns {
		return w.retryAfter(w.nakDelay, fmt.Errorf("worker: order %s keeps changing under us", id))
	}
	o, err := w.ledger.Get(ctx, id)
	if err != nil {
		return w.retryAfter(w.nakDelay, err)
	}
	return w.run(ctx, o, d)
}

// work runs the buy loop of a claimed order.
func (w *Worker) work(ctx context.Context, o *ledger.Order, owner string, d delivery) result {
	id := o.OrderID
	log := w.log.With("orderId", id)
	if a := o.Attempt; a != nil {
		// Whoever made this attempt stopped before writing its result: it may
		// have bought a number. Never buy again on top of it.
		return w.inDoubt(ctx, o, d, events.Error{Code: string(provider.ErrInDoubt), Message: fmt.Sprintf(
			"buy attempt %d started at %s by %s has no recorded result; it may have bought a number",
			a.Seq, a.StartedAt.Format(time.RFC3339), a.Owner)})
	}
	o, r := w.publishNumbers(ctx, o)
	if r != nil {
		w.release(ctx, o, owner)
		return *r
	}
	if o.Remaining() == 0 {
		return w.complete(ctx, o, d)
	}
	if d.endNow {
		return w.fail(ctx, o, d, events.Error{Code: events.CodeMaxDeliveries,
			Message: fmt.Sprintf("the order's message was delivered as often as allowed; %d of %d numbers bought", len(o.Numbers), o.Quantity)})
	}

	rem, err := w.inv.Remain(ctx, o.Request.RemainQuery())
	if err != nil {
		if retryLater(provider.KindOf(err)) {
			return w.later(ctx, o, owner, d, fmt.Errorf("inventory check: %w", err))
		}
		return w.fail(ctx, o, d, events.Error{Code: string(provider.KindOf(err)), Message: "inventory check: " + err.Error()})
	}
	if rem.Amount < int64(o.Remaining()) {
		q := o.Request.RemainQuery()
		return w.fail(ctx, o, d, events.Error{Code: string(provider.ErrInsufficientInventory), Message: fmt.Sprintf(
			"%d numbers left for city %s, specId %d, prefix %q; %d still wanted", rem.Amount, q.City, q.SpecID, q.Prefix, o.Remaining())})
	}

	refusals := 0
	for o.Remaining() > 0 {
		if err := w.mayStartBuy(ctx); err != nil {
			w.release(ctx, o, owner)
			return w.retryAfter(0, err)
		}
		if err := w.limiter.Wait(ctx); err != nil {
			w.release(ctx, o, owner)
			return w.retryAfter(0, err)
		}
		d.touch()
		next, err := w.beginAttempt(ctx, o, owner)
		if errors.Is(err, provider.ErrConflict) {
			return w.rerun(ctx, id, d)
		}
		if err != nil {
			w.release(ctx, o, owner)
			return w.retryAfter(w.nakDelay, err)
		}
		o = next
		seq := o.Attempt.Seq
		w.stats.buys.Add(1)
		res, buyErr := w.buy(ctx, o.Request.BuyRequest())
		if buyErr == nil {
			w.stats.bought.Add(1)
			if err := w.fault(ctx, AfterBuy, id); err != nil {
				return aborted(err)
			}
			if o, err = w.record(ctx, o, seq, res); err != nil {
				// The number is only in this log line now. The attempt stays
				// in the ledger, so the next delivery puts the order in doubt
				// and an operator settles it with this number.
				log.ErrorContext(ctx, "bought number not written to the ledger", "secretNo", res.SecretNo,
					"providerRequestId", res.RequestID, "attempt", seq, "error", err.Error())
				return w.retryAfter(w.nakDelay, err)
			}
			log.InfoContext(ctx, "number bought", "secretNo", res.SecretNo, "providerRequestId", res.RequestID,
				"attempt", seq, "bought", len(o.Numbers), "quantity", o.Quantity)
			if err := w.fault(ctx, AfterRecord, id); err != nil {
				return aborted(err)
			}
			var r *result
			if o, r = w.publishNumbers(ctx, o); r != nil {
				w.release(ctx, o, owner)
				return *r
			}
			if o.Status != ledger.StatusProcessing || o.Claim == nil || o.Claim.Owner != owner {
				// The order moved while we bought (our lease lapsed and the
				// late answer settled someone's doubt): start over.
				return w.rerun(ctx, id, d)
			}
			refusals = 0
			d.touch()
			continue
		}

		kind := provider.KindOf(buyErr)
		if !nothingBought(kind) {
			log.WarnContext(ctx, "buy outcome unknown", "attempt", seq, "error", buyErr.Error())
			return w.inDoubt(ctx, o, d, events.Error{Code: string(provider.ErrInDoubt), Message: fmt.Sprintf("buy attempt %d: %v", seq, buyErr)})
		}
		w.stats.refused.Add(1)
		if o, err = w.abandon(ctx, o, seq, buyErr); err != nil {
			return w.retryAfter(w.nakDelay, err)
		}
		if o.Status != ledger.StatusProcessing || o.Claim == nil || o.Claim.Owner != owner {
			return w.rerun(ctx, id, d)
		}
		if !retryLater(kind) {
			log.InfoContext(ctx, "buy refused", "attempt", seq, "code", string(kind), "error", o.LastError.Message)
			return w.fail(ctx, o, d, *o.LastError)
		}
		refusals++
		if refusals > w.retries {
			return w.later(ctx, o, owner, d, fmt.Errorf("buy refused %d times in a row: %w", refusals, buyErr))
		}
		log.DebugContext(ctx, "buy refused, retrying", "attempt", seq, "code", string(kind), "retry", refusals)
		select {
		case <-ctx.Done():
			w.release(ctx, o, owner)
			return w.retryAfter(0, ctx.Err())
		case <-time.After(w.backoff << (refusals - 1)):
		}
	}
	return w.complete(ctx, o, d)
}

// beginAttempt records the next attempt. When the write's answer is lost
// (NATS went away) it reads the order back: if the attempt is there, ours,
// the write landed and the buy may go ahead; otherwise it did not, and the
// caller gives up the claim. Either way no attempt is left recorded without
// its owner knowing.
func (w *Worker) beginAttempt(ctx context.Context, o *ledger.Order, owner string) (*ledger.Order, error) {
	wctx, cancel := context.WithTimeout(ctx, w.writeTimeout())
	next, err := w.ledger.BeginAttempt(wctx, o, owner, w.lease)
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
	case now.Attempt != nil && now.Attempt.Owner == owner && now.Attempt.Seq == o.Attempts+1 &&
		now.Status == ledger.StatusProcessing && now.Claim != nil && now.Claim.Owner == owner:
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
// bought: the provider answered with a refusal. Anything else — in doubt,
// an unmapped error — may have bought one.
func nothingBought(k provider.Kind) bool {
	switch k {
	case provider.ErrInvalidParameter, provider.ErrUnauthorized, provider.ErrNotFound, provider.ErrConflict,
		provider.ErrInsufficientInventory, provider.ErrThrottled, provider.ErrUnavailable:
		return true
	}
	return false
}

// retryLater tells the refusals after which an order waits for a later
// delivery instead of failing: the provider's passing trouble, and our own
// credentials or permissions, which an operator fixes without the order
// changing (a rotated key must not fail every order in flight). Max
// deliveries still ends such an order.
func retryLater(k provider.Kind) bool {
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
func (w *Worker) later(ctx context.Context, o *ledger.Order, owner string, d delivery, cause error) result {
	if d.last {
		return w.fail(ctx, o, d, events.Error{Code: string(provider.KindOf(cause)),
			Message: "gave up on the last delivery: " + cause.Error()})
	}
	w.log.InfoContext(ctx, "order waits for a later delivery", "orderId", o.OrderID, "reason", cause.Error())
	w.release(ctx, o, owner)
	return w.retryAfter(w.nakDelay, cause)
}

// release gives the claim back so the next delivery need not wait for the
// lease to lapse. It is best effort: a lease lapses anyway.
func (w *Worker) release(ctx context.Context, o *ledger.Order, owner string) {
	if o == nil || o.Claim == nil || o.Claim.Owner != owner || o.Attempt != nil {
		return
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if _, err := w.ledger.Release(rctx, o, owner); err != nil {
		w.log.DebugContext(ctx, "claim not released; its lease will lapse", "orderId", o.OrderID, "error", err.Error())
	}
}

// publishNumbers publishes number.purchased for each number not yet
// published, and marks it. On failure it returns a retry result.
func (w *Worker) publishNumbers(ctx context.Context, o *ledger.Order) (*ledger.Order, *result) {
	pending := o.Unpublished()
	if len(pending) == 0 {
		return o, nil
	}
	pctx, cancel := detached(ctx)
	defer cancel()
	for _, n := range pending {
		ev, err := events.New(w.source, w.now(), events.NumberPurchased{
			OrderID: o.OrderID, SecretNo: n.SecretNo, PoolKey: o.Request.PoolKey,
			City: o.Request.City, SpecID: o.Request.SpecID, RequestID: n.RequestID,
		})
		if err == nil {
			_, err = w.pub.PublishEvent(pctx, ev)
		}
		if err != nil {
			r := w.retryAfter(w.nakDelay, fmt.Errorf("publish number %s: %w", n.SecretNo, err))
			return o, &r
		}
		next, err := w.ledger.MarkNumberPublished(pctx, o, n.SecretNo)
		if err != nil {
			r := w.retryAfter(w.nakDelay, err)
			return o, &r
		}
		o = next
	}
	return o, nil
}

// complete, fail and inDoubt write the order's end (or stop) and publish it.

func (w *Worker) complete(ctx context.Context, o *ledger.Order, d delivery) result {
	return w.end(ctx, o, d, "completed", func(c context.Context) (*ledger.Order, error) { return w.ledger.Complete(c, o) })
}

func (w *Worker) fail(ctx context.Context, o *ledger.Order, d delivery, why events.Error) result {
	return w.end(ctx, o, d, "failed", func(c context.Context) (*ledger.Order, error) { return w.ledger.Fail(c, o, why) })
}

func (w *Worker) inDoubt(ctx context.Context, o *ledger.Order, d delivery, why events.Error) result {
	return w.end(ctx, o, d, "in_doubt", func(c context.Context) (*ledger.Order, error) { return w.ledger.MarkInDoubt(c, o, why) })
}

func (w *Worker) end(ctx context.Context, o *ledger.Order, d delivery, what string, write func(context.Context) (*ledger.Order, error)) result {
	wctx, cancel := detached(ctx)
	defer cancel()
	n, err := write(wctx)
	if errors.Is(err, provider.ErrConflict) {
		return w.rerun(ctx, o.OrderID, d)
	}
	if err != nil {
		return w.retryAfter(w.nakDelay, err)
	}
	attrs := []any{"orderId", n.OrderID, "bought", len(n.Numbers), "quantity", n.Quantity}
	switch n.Status {
	case ledger.StatusCompleted:
		w.stats.completed.Add(1)
	case ledger.StatusFailed:
		w.stats.failed.Add(1)
		attrs = append(attrs, "code", n.Error.Code, "reason", n.Error.Message)
	case ledger.StatusInDoubt:
		w.stats.inDoubt.Add(1)
		attrs = append(attrs, "attempt", n.Attempt.Seq, "reason", n.Error.Message)
	}
	level := slog.LevelInfo
	if n.Status == ledger.StatusInDoubt {
		level = slog.LevelWarn
	}
	w.log.Log(ctx, level, "order "+what, attrs...)
	return w.finish(ctx, n)
}

// finish makes sure every event of a stopped order is published — its
// numbers, then its status event — and then lets the message be acked.
// A redelivered message of a stopped order comes straight here.
func (w *Worker) finish(ctx context.Context, o *ledger.Order) result {
	o, r := w.publishNumbers(ctx, o)
	if r != nil {
		return *r
	}
	if o.Status.Stopped() && !o.EventPublished {
		pctx, cancel := detached(ctx)
		defer cancel()
		ev, err := statusEvent(w.source, w.now(), o)
		if err == nil {
			_, err = w.pub.PublishEvent(pctx, ev)
		}
		if err != nil {
			return w.retryAfter(w.nakDelay, fmt.Errorf("publish %s of order %s: %w", o.Status, o.OrderID, err))
		}
		var se *ledger.StateError
		if _, err := w.ledger.MarkEventPublished(pctx, o, o.Status); err != nil && !errors.As(err, &se) {
			// The event is out; the mark is not. A later replay publishes it
			// again under the same Msg-Id, which the stream drops.
			return w.retryAfter(w.nakDelay, err)
		}
	}
	if err := w.fault(ctx, BeforeAck, o.OrderID); err != nil {
		return aborted(err)
	}
	return done()
}

// statusEvent is the event of a stopped order's status.
func statusEvent(source string, t time.Time, o *ledger.Order) (events.Event, error) {
	numbers := o.NumberList()
	var errv events.Error
	if o.Error != nil {
		errv = *o.Error
	}
	switch o.Status {
	case ledger.StatusCompleted:
		return events.New(source, t, events.OrderCompleted{OrderID: o.OrderID, Numbers: numbers})
	case ledger.StatusFailed:
		return events.New(source, t, events.OrderFailed{OrderID: o.OrderID, Numbers: numbers, Error: errv})
	case ledger.StatusInDoubt:
		seq := o.Attempts
		if o.Attempt != nil {
			seq = o.Attempt.Seq
		}
		return events.New(source, t, events.OrderInDoubt{OrderID: o.OrderID, Attempt: seq, Numbers: numbers, Error: errv})
	}
	return events.Event{}, fmt.Errorf("worker: order %s is %s, which has no event", o.OrderID, o.Status)
}
