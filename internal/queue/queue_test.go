package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/pkg/provider"
)

func connect(t *testing.T, s *embednats.Server) (*nats.Conn, jetstream.JetStream) {
	return testutil.JetStream(t, s.ClientURL())
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSetupRefusesBadOptions(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	for name, opt := range map[string]queue.Option{
		"replicas -1":        queue.WithReplicas(-1),
		"replicas 2":         queue.WithReplicas(2),
		"replicas 7":         queue.WithReplicas(7),
		"max deliver 1":      queue.WithMaxDeliver(1),
		"backoff too long":   func(c *queue.Config) { c.MaxDeliver = 2; c.Backoff = []time.Duration{1, 2, 3} },
		"negative backoff":   queue.WithBackoff(time.Second, -time.Second),
		"history 65":         queue.WithLedgerHistory(65),
		"tiny window":        queue.WithDuplicateWindow(time.Millisecond),
		"window over maxage": func(c *queue.Config) { c.MaxAge = time.Minute; c.DuplicateWindow = time.Hour },
		"tiny ack wait":      queue.WithAckWait(time.Millisecond),
	} {
		if _, err := queue.Setup(ctx, js, opt); err == nil {
			t.Errorf("%s: Setup accepted it", name)
		}
	}
	// Nothing was created by the refused calls.
	if _, err := js.Stream(ctx, queue.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after refused setups: %v", err)
	}
}

func TestPublisherDeduplicates(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	q, err := queue.Setup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	p := q.Publisher()
	o := events.OrderRequested{OrderID: "o1", PoolKey: "P", City: "杭州", SpecID: 1, Quantity: 1}
	ev, _ := events.New(events.SourceIntake, time.Now(), o)
	a1, err := p.PublishEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	ev2, _ := events.New(events.SourceIntake, time.Now().Add(time.Second), o) // a later re-publish of the same order
	a2, err := p.PublishEvent(ctx, ev2)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("acks %+v %+v: want the second a duplicate of the first", a1, a2)
	}
	msg, err := q.Stream.GetLastMsgForSubject(ctx, events.SubjectOrderRequested)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) != "o1" || msg.Header.Get("Content-Type") != events.ContentType {
		t.Fatalf("headers %v", msg.Header)
	}
	got, err := events.DecodeOrderRequested(msg.Data)
	if err != nil || got != o {
		t.Fatalf("stored order %+v, %v", got, err)
	}
	si, _ := q.Stream.Info(ctx)
	if si.State.Msgs != 1 {
		t.Fatalf("%d messages in the stream, want 1", si.State.Msgs)
	}

	if _, err := p.Publish(ctx, events.SubjectOrderRequested, "", []byte("{}"), nil); !errors.Is(err, queue.ErrNoMsgID) {
		t.Fatalf("publish without id: %v", err)
	}
	if _, err := queue.NewPublisher(js, queue.WithPublishRetry(1, 0)).Publish(ctx, "elsewhere.x", "id", []byte("{}"), nil); err == nil {
		t.Fatal("publish outside the stream succeeded")
	}
	other := queue.NewPublisher(js, queue.WithExpectStream("OTHER"), queue.WithPublishRetry(1, 0))
	if _, err := other.Publish(ctx, events.SubjectOrderRequested, "o2", []byte("{}"), nil); err == nil {
		t.Fatal("publish expecting another stream succeeded")
	}
	if _, err := p.PublishEvent(ctx, events.Event{Type: "x.y"}); err == nil {
		t.Fatal("event without a subject published")
	}
}

func TestPublishEventCarriesTheTrace(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	q, err := queue.Setup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	p := q.Publisher()
	tc := traceparent.New()
	traced := traceparent.With(logging.WithRequestID(ctx, "req-7"), tc)
	stored := func(id string) events.Event {
		t.Helper()
		msg, err := q.Stream.GetLastMsgForSubject(ctx, events.SubjectOrderRequested)
		if err != nil {
			t.Fatal(err)
		}
		var ev events.Event
		if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.ID != id {
			t.Fatalf("stored event %s, %v; want %s", msg.Data, err, id)
		}
		return ev
	}
	publish := func(ctx context.Context, ev events.Event) {
		t.Helper()
		if _, err := p.PublishEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	ev, _ := events.New(events.SourceIntake, time.Now(), events.OrderRequested{OrderID: "t1", PoolKey: "P", City: "杭州", SpecID: 1, Quantity: 1})
	publish(traced, ev)
	if got := stored("t1"); got.TraceParent != tc.String() || got.RequestID != "req-7" {
		t.Errorf("stored traceparent %q, requestid %q; want the context's %q, req-7", got.TraceParent, got.RequestID, tc)
	}
	// An event's own trace wins; a context without one adds nothing.
	ev, _ = events.New(events.SourceIntake, time.Now(), events.OrderRequested{OrderID: "t2", PoolKey: "P", City: "杭州", SpecID: 1, Quantity: 1})
	ev.TraceParent, ev.RequestID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "caller"
	publish(traced, ev)
	if got := stored("t2"); got.TraceParent != ev.TraceParent || got.RequestID != "caller" {
		t.Errorf("stored %q, %q; want the event's own %q, caller", got.TraceParent, got.RequestID, ev.TraceParent)
	}
	ev, _ = events.New(events.SourceIntake, time.Now(), events.OrderRequested{OrderID: "t3", PoolKey: "P", City: "杭州", SpecID: 1, Quantity: 1})
	publish(ctx, ev)
	if got := stored("t3"); got.TraceParent != "" || got.RequestID != "" {
		t.Errorf("stored %q, %q from a context without either; want neither", got.TraceParent, got.RequestID)
	}
}

func TestPublishWhileServerDownIsUnavailable(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	q, err := queue.Setup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = q.Publisher(queue.WithPublishRetry(2, 10*time.Millisecond)).Publish(short, events.SubjectOrderRequested, "x", []byte("{}"), nil)
	if provider.KindOf(err) != provider.ErrUnavailable || !strings.Contains(err.Error(), "NATS") {
		t.Fatalf("publish to a stopped server: %v (kind %s)", err, provider.KindOf(err))
	}
	// After a restart the same publisher works again.
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Publisher(queue.WithPublishRetry(20, 50*time.Millisecond)).Publish(ctx, events.SubjectOrderRequested, "x", []byte("{}"), nil); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
}

func TestMaxDeliveriesAdvisoryIsKept(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	q, err := queue.Setup(ctx, js, queue.WithMaxDeliver(2), queue.WithAckWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := q.Publisher().Publish(ctx, events.SubjectOrderRequested, "o9", []byte(`{"orderId":"o9"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two deliveries, neither acked: the first is nak'ed, the second is left
	// to time out as when a worker crashes; that hits max deliver.
	for i := range 2 {
		batch, err := q.Consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if i == 0 {
				if err := m.Nak(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n != 1 {
			t.Fatalf("delivery %d: %d messages", i+1, n)
		}
	}
	// A worker keeps pulling; the server finds the delivery over and
	// sends the advisory, which no one listens to but its stream.
	batch, err := q.Consumer.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Fatalf("a third delivery of %s", m.Data())
	}
	batch, err = q.Advisories.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var adv queue.MaxDeliveriesAdvisory
	for m := range batch.Messages() {
		if err := json.Unmarshal(m.Data(), &adv); err != nil {
			t.Fatal(err)
		}
		_ = m.Ack()
	}
	if adv.StreamSeq != ack.Sequence || adv.Stream != queue.StreamName || adv.Consumer != queue.ConsumerName || adv.Deliveries != 2 {
		t.Fatalf("advisory %+v, want stream seq %d after 2 deliveries", adv, ack.Sequence)
	}
	t.Logf("advisory kept: %+v", adv)
}
