package buy

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/trigger"
)

type publishFunc func(ctx context.Context, ev events.Event) (*jetstream.PubAck, error)

func (f publishFunc) PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error) {
	return f(ctx, ev)
}

// Queue messages are handed to JetStream under their order id (an invalid
// order too: the worker fails it under its id), the worker function is woken
// for each, and only a publish that failed fails its message; a message
// that is no order is dropped; the cloud's number reports, from any source,
// reach the reports intake, whose answer each gets; other messages reach
// the worker.
func TestHandOff(t *testing.T) {
	var published, woken []string
	down := false
	pub := publishFunc(func(_ context.Context, ev events.Event) (*jetstream.PubAck, error) {
		if down {
			return nil, errors.New("nats: no responders")
		}
		published = append(published, ev.MsgID())
		return &jetstream.PubAck{Sequence: uint64(len(published))}, nil
	})
	var worked []string
	worker := trigger.EventHandlerFunc(func(_ context.Context, msgs []trigger.Message) []error {
		for _, m := range msgs {
			worked = append(worked, string(m.Body))
		}
		return make([]error, len(msgs))
	})
	var reported []string
	reports := trigger.EventHandlerFunc(func(_ context.Context, msgs []trigger.Message) []error {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			reported = append(reported, string(m.Body))
			if m.ID == "r-fails" {
				errs[i] = errors.New("nats: no responders")
			}
		}
		return errs
	})
	h := handOff{pub: pub, worker: worker, reports: reports, log: slog.New(slog.DiscardHandler), now: time.Now,
		accepted: func(_ context.Context, o events.OrderRequested) { woken = append(woken, o.OrderID) }}
	good := `{"orderId":"q-1","poolKey":"FC1","city":"杭州","specId":2,"quantity":1}`
	invalid := `{"orderId":"q-2","poolKey":"FC1","city":"杭州","specId":2,"quantity":0}`
	report := `{"secretNo":"13905700001","city":"杭州","partnerKey":"FC1","operatingTime":"2026-03-01 16:00:00","status":1}`
	errs := h.HandleEvents(context.Background(), []trigger.Message{
		{Source: trigger.SourceMNS, Body: []byte(good)},
		{Source: trigger.SourceRocketMQ, Body: []byte(invalid)},
		{Source: trigger.SourceMNS, Body: []byte(report)},
		{Source: trigger.SourceKafka, Body: []byte(`not an order`)},
		{Source: trigger.SourceDirect, Body: []byte(`{"orderId":"d-1"}`)},
		{Source: trigger.SourceDirect, Body: []byte(report), ID: "r-fails"},
	})
	for i, err := range errs {
		if (err != nil) != (i == 5) {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if len(published) != 2 || published[0] != "q-1" || published[1] != "q-2" || len(woken) != 2 || len(worked) != 1 || len(reported) != 2 {
		t.Fatalf("published %v, woken %v, worked %v, reported %v", published, woken, worked, reported)
	}
	down = true
	if errs := h.HandleEvents(context.Background(), []trigger.Message{{Source: trigger.SourceMNS, Body: []byte(good)}}); errs[0] == nil || len(woken) != 2 {
		t.Fatalf("NATS down: %v, woken %v", errs, woken)
	}
}
