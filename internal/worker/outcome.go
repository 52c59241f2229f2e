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

// publishNumbers publishes the event of every number not yet published —
// number.purchased, or number.excess for an excess number — and marks it.
// On failure it returns a retry result.
func (w *Worker) publishNumbers(ctx context.Context, o *ledger.Order) (*ledger.Order, *result) {
	pending, excess := o.Unpublished(), o.UnpublishedExcess()
	if len(pending)+len(excess) == 0 {
		return o, nil
	}
	pctx, cancel := detached(ctx)
	defer cancel()
	req := o.Request
	publish := func(n ledger.Number, p events.Payload) *result {
		ev, err := events.New(w.source, w.now(), p)
		if err == nil {
			_, err = w.pub.PublishEvent(pctx, ev)
		}
		if err != nil {
			r := w.retryAfter(w.nakDelay, fmt.Errorf("publish number %s: %w", n.SecretNo, err))
			return &r
		}
		next, err := w.ledger.MarkNumberPublished(pctx, o, n.SecretNo)
		if err != nil {
			r := w.retryAfter(w.nakDelay, err)
			return &r
		}
		o = next
		return nil
	}
	for _, n := range pending {
		if r := publish(n, events.NumberPurchased{OrderID: o.OrderID, SecretNo: n.SecretNo, PoolKey: req.PoolKey,
			City: req.City, SpecID: req.SpecID, RequestID: n.RequestID}); r != nil {
			return o, r
		}
	}
	for _, n := range excess {
		w.log.WarnContext(ctx, "number bought past the order's quantity", "orderId", o.OrderID, "secretNo", n.SecretNo, "attempt", n.Attempt)
		if r := publish(n, events.NumberExcess{OrderID: o.OrderID, SecretNo: n.SecretNo, PoolKey: req.PoolKey,
			City: req.City, SpecID: req.SpecID, Attempt: n.Attempt, RequestID: n.RequestID}); r != nil {
			return o, r
		}
	}
	return o, nil
}

// endCompleted, endFailed and stopInDoubt write where the order ends (or
// stops) and publish it.

func (w *Worker) endCompleted(ctx context.Context, o *ledger.Order, d *delivery) result {
	return w.end(ctx, o, d, func(c context.Context) (*ledger.Order, error) { return w.ledger.Complete(c, o) })
}

func (w *Worker) endFailed(ctx context.Context, o *ledger.Order, d *delivery, why events.Error) result {
	return w.end(ctx, o, d, func(c context.Context) (*ledger.Order, error) { return w.ledger.Fail(c, o, why) })
}

func (w *Worker) stopInDoubt(ctx context.Context, o *ledger.Order, d *delivery, why events.Error) result {
	return w.end(ctx, o, d, func(c context.Context) (*ledger.Order, error) { return w.ledger.MarkInDoubt(c, o, why) })
}

func (w *Worker) end(ctx context.Context, o *ledger.Order, d *delivery, write func(context.Context) (*ledger.Order, error)) result {
	wctx, cancel := detached(ctx)
	defer cancel()
	n, err := write(wctx)
	if errors.Is(err, provider.ErrConflict) {
		return w.rerun(ctx, o.OrderID, d)
	}
	if err != nil {
		return w.giveBack(ctx, o, d, w.retryAfter(w.nakDelay, err))
	}
	w.obs.Order(ctx, string(n.Status), w.age(n.CreatedAt))
	attrs := []any{"orderId", n.OrderID, "bought", len(n.Numbers), "quantity", n.Quantity}
	level := slog.LevelInfo
	switch n.Status {
	case ledger.StatusCompleted:
		w.stats.completed.Add(1)
	case ledger.StatusFailed:
		w.stats.failed.Add(1)
		attrs = append(attrs, "code", n.Error.Code, "reason", n.Error.Message)
	case ledger.StatusInDoubt:
		w.stats.inDoubt.Add(1)
		attrs = append(attrs, "attempt", n.Attempt.Seq, "reason", n.Error.Message)
		level = slog.LevelWarn
	}
	w.log.Log(ctx, level, "order "+string(n.Status), attrs...)
	return w.publishStopped(ctx, n)
}

// publishStopped makes sure every event of a stopped order is published —
// its numbers, then its status event — and then lets the message be acked.
// A redelivered message of a stopped order comes straight here.
func (w *Worker) publishStopped(ctx context.Context, o *ledger.Order) result {
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
	return ack()
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
