package buy

import (
	"context"
	"log/slog"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// handOff is the buy function's event handler. An order that comes from a
// queue trigger (EventBridge from MNS, RocketMQ or Kafka) is only handed to
// JetStream — published on xnum.orders.requested with Nats-Msg-Id = its
// order id — and the worker buys it from there like any queued order, with
// JetStream's redelivery and max-deliveries. So one bad or stuck order never
// holds up the event stream: the invocation ends as soon as JetStream has
// the order, and fails only when JetStream cannot take it (then the stream
// retries, and nothing is lost). The cloud's number reports, from whichever
// source (they have a queue of their own), go to the reports intake. Timer
// drains, direct invocations and SQS batches go to the worker as they are.
type handOff struct {
	pub     intake.Publisher
	worker  trigger.EventHandler
	reports trigger.EventHandler
	// accepted, when set, wakes the worker function for a handed-off order,
	// as the intake does for a POSTed one (Config.Accepted).
	accepted func(context.Context, events.OrderRequested)
	log      *slog.Logger
	now      func() time.Time
}

// fromQueue tells the sources whose orders are handed to JetStream.
func fromQueue(source string) bool {
	switch source {
	case trigger.SourceMNS, trigger.SourceRocketMQ, trigger.SourceKafka:
		return true
	}
	return false
}

// HandleEvents publishes the queue's orders in order, and hands the
// reports to the reports intake and the rest to the worker, each in one
// batch.
func (h handOff) HandleEvents(ctx context.Context, msgs []trigger.Message) []error {
	errs := make([]error, len(msgs))
	var reps, rest batch
	for i, m := range msgs {
		switch {
		case m.Source != trigger.SourceTimer && reports.Is(m.Body):
			reps.add(i, m)
		case fromQueue(m.Source):
			errs[i] = h.publish(ctx, m)
		default:
			rest.add(i, m)
		}
	}
	reps.handle(ctx, h.reports, errs)
	rest.handle(ctx, h.worker, errs)
	return errs
}

// batch is some of an invocation's messages, and where each was.
type batch struct {
	msgs []trigger.Message
	at   []int
}

func (b *batch) add(i int, m trigger.Message) { b.msgs, b.at = append(b.msgs, m), append(b.at, i) }

// handle has h handle the batch, and puts each answer in errs where its
// message was.
func (b *batch) handle(ctx context.Context, h trigger.EventHandler, errs []error) {
	if len(b.msgs) == 0 {
		return
	}
	for j, err := range h.HandleEvents(ctx, b.msgs) {
		errs[b.at[j]] = err
	}
}

// publish hands one queue message to JetStream. An order that decodes but
// is invalid is handed on too: the worker fails it under its id, with
// order.failed saying why. A message that is no order at all is logged and
// dropped: delivering it again cannot make it one, and failing it would stop
// the stream behind it.
func (h handOff) publish(ctx context.Context, m trigger.Message) error {
	log := h.log.With("source", m.Source, "messageId", m.ID)
	o, err := events.DecodeOrderRequested(m.Body)
	if err == nil {
		err = events.ValidateOrderID(o.OrderID)
	}
	if err != nil {
		log.WarnContext(ctx, "queue message is not an order with a usable id; dropped", "err", err)
		return nil
	}
	ev, err := events.New(events.SourceIntake, h.now(), o)
	if err != nil {
		return err
	}
	ack, err := h.pub.PublishEvent(ctx, ev)
	if err != nil {
		log.WarnContext(ctx, "order not handed to JetStream; the trigger will deliver it again", "orderId", o.OrderID, "err", err)
		return err
	}
	log.InfoContext(ctx, "order handed to JetStream", "orderId", o.OrderID, "duplicate", ack.Duplicate)
	if h.accepted != nil {
		h.accepted(ctx, o)
	}
	return nil
}
