package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/traceparent"
)

// Publisher publishes to the stream and waits for its PubAck. Every message
// carries a Nats-Msg-Id, so publishing the same fact again (after a lost
// ack, a crash, a redelivery) is dropped by the stream's duplicate window.
type Publisher struct {
	js       jetstream.JetStream
	stream   string
	attempts int
	wait     time.Duration
	timeout  time.Duration
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithExpectStream makes the server refuse a publish that would land in any
// stream but name (default StreamName).
func WithExpectStream(name string) PublisherOption { return func(p *Publisher) { p.stream = name } }

// WithPublishRetry sets how often a publish is tried (default 3) and the
// first wait between tries (default 200ms, doubling). A retry repeats the
// Msg-Id, so it cannot duplicate.
func WithPublishRetry(attempts int, wait time.Duration) PublisherOption {
	return func(p *Publisher) { p.attempts, p.wait = attempts, wait }
}

// WithPublishTimeout bounds the wait for the PubAck of one try (default 5s).
// A request sent just before the server went away gets no answer at all,
// not even after a reconnect; the next try, with the same Msg-Id, does.
func WithPublishTimeout(d time.Duration) PublisherOption {
	return func(p *Publisher) { p.timeout = d }
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, stream: StreamName, attempts: 3, wait: 200 * time.Millisecond, timeout: 5 * time.Second}
	for _, o := range opts {
		o(p)
	}
	if p.attempts < 1 {
		p.attempts = 1
	}
	return p
}

// Publisher returns a Publisher for q's stream.
func (q *Queue) Publisher(opts ...PublisherOption) *Publisher {
	return NewPublisher(q.JS, append([]PublisherOption{WithExpectStream(q.Config.Stream)}, opts...)...)
}

// ErrNoMsgID is returned for a publish without a Nats-Msg-Id.
var ErrNoMsgID = errors.New("queue: publish without a Nats-Msg-Id")

// Publish stores data on subject with Nats-Msg-Id msgID and returns the
// stream's ack; PubAck.Duplicate tells that the stream already had msgID.
// hdr may add headers. A failure is provider.ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header) (*jetstream.PubAck, error) {
	if msgID == "" {
		return nil, ErrNoMsgID
	}
	h := nats.Header{}
	for k, v := range hdr {
		h[k] = v
	}
	h.Set(jetstream.MsgIDHeader, msgID)
	h.Set(jetstream.ExpectedStreamHeader, p.stream)
	wait := p.wait
	var err error
	for try := 1; ; try++ {
		var ack *jetstream.PubAck
		tctx, cancel := context.WithTimeout(ctx, p.timeout)
		ack, err = p.js.PublishMsg(tctx, &nats.Msg{Subject: subject, Header: h, Data: data})
		cancel()
		if err == nil {
			return ack, nil
		}
		if try >= p.attempts || !transient(err) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, Unavailable("publish "+subject, fmt.Errorf("%w (after %v)", ctx.Err(), err))
		case <-time.After(wait):
		}
		wait *= 2
	}
	return nil, Unavailable("publish "+subject, err)
}

// transient tells errors a later try may not meet: the server or the
// connection was away. An API error (wrong stream, bad subject) will repeat.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code >= 500 || apiErr.Code == 0
	}
	return !errors.Is(err, context.Canceled)
}

// PublishEvent publishes ev in CloudEvents structured mode on its type's
// subject, with its id as the Nats-Msg-Id. An event without a traceparent or
// request id gets those of ctx (internal/traceparent, internal/logging), so
// whoever handles it continues the trace of the work that published it.
func (p *Publisher) PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error) {
	if tc, ok := traceparent.From(ctx); ok && ev.TraceParent == "" {
		ev.TraceParent = tc.String()
	}
	if ev.RequestID == "" {
		ev.RequestID = logging.RequestID(ctx)
	}
	subject := ev.Subject()
	if subject == "" {
		return nil, fmt.Errorf("queue: event type %q has no subject", ev.Type)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("queue: marshal event %s: %w", ev.ID, err)
	}
	return p.Publish(ctx, subject, ev.MsgID(), b, nats.Header{"Content-Type": []string{events.ContentType}})
}
