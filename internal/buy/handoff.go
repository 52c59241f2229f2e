package buy

import (
	"context"
	"log/slog"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// handOff is the buy function's event handler. An order that comes from a
// queue trigger (EventBridge from MNS, RocketMQ or Kafka) is only handed to
// JetStream — published on xnum.orders.requested with Nats-Msg-Id = its
// order id — and the worker buys it from there like any queued order, with
// JetStream's redelivery and max-deliveries. So one bad or stuck order never
// holds up the event stream: the invocation ends as soon as JetStream has
// the order, and fails only when JetStream cannot take it (then the stream
// retries, and nothing is lost). Timer drains, direct invocations and SQS
// batches go to the worker as they are.
type handOff struct {
	pub    intake.Publisher
	worker trigger.EventHandler
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

// HandleEvents publishes the queue messages in order and hands the rest to
// the worker in one batch.
func (h handOff) HandleEvents(ctx context.Context, msgs []trigger.Message) []error {
	errs := make([]error, len(msgs))
	var rest []trigger.Message
	var restAt []int
	for i, m := range msgs {
		if fromQueue(m.Source) {
			errs[i] = h.publish(ctx, m)
			continue
		}
		rest, restAt = append(rest, m), append(restAt, i)
	}
	if len(rest) > 0 {
		for j, err := range h.worker.HandleEvents(ctx, rest) {
			errs[restAt[j]] = err
		}
	}
	return errs
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
