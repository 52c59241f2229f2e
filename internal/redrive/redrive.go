// Package redrive gives every order that has not ended a driver. An order is
// driven by its order.requested message: a worker that is delivered it
// claims the order and buys. Some orders lose their message while they are
// still open — it was acknowledged when the order went in doubt and an
// operator settled it afterwards, the intake's publish failed after the
// ledger entry was written, a worker on an event trigger was killed and the
// platform stopped retrying — and nothing would ever drive them again.
//
// Order publishes the message again for one order, right after whoever
// moved it (a settlement) or on an operator's word. Sweep finds the orders
// nobody drives and does the same for each: accepted or processing, no live
// claim, idle for a while, and no message the consumer may still deliver
// (the ledger remembers the stream sequence of the order's newest message;
// while the consumer's acknowledgement floor is below it, that message may
// still come). A redrive is a new message, {orderId}/redrive/{n}, so it gets
// the consumer's deliveries, backoff and max-deliveries ending like the
// first; counting it in the ledger first (compare-and-set) keeps two
// sweepers from publishing two. A message too many is harmless: the ledger
// makes a duplicate delivery a replay.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Publisher publishes an event and waits for the stream's ack
// (*queue.Publisher).
type Publisher interface {
	PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error)
}

// Floor tells how far the order consumer has acknowledged: every message at
// or below the returned stream sequence is acked (or terminated) and will
// not be delivered again (jetstream.Consumer).
type Floor interface {
	Info(ctx context.Context) (*jetstream.ConsumerInfo, error)
}

// Redriver publishes orders again. Build it with New.
type Redriver struct {
	ledger *ledger.Ledger
	pub    Publisher
	floor  Floor
	idle   time.Duration
	limit  int
	source string
	log    *slog.Logger
	now    func() time.Time
}

// Option configures a Redriver.
type Option func(*Redriver)

// WithIdle sets how long an order must have gone unchanged before Sweep
// drives it again (default 30s: longer than a nak delay or a publish, so a
// delivery that is about to happen is not doubled).
func WithIdle(d time.Duration) Option { return func(r *Redriver) { r.idle = d } }

// WithLimit bounds how many orders one Sweep publishes (default 100), so a
// sweep fits in a timer invocation.
func WithLimit(n int) Option { return func(r *Redriver) { r.limit = n } }

// WithFloor gives Sweep the order consumer, whose acknowledgement floor
// tells which orders may still have a message coming. Without it Sweep goes
// by idleness alone.
func WithFloor(f Floor) Option { return func(r *Redriver) { r.floor = f } }

// WithSource sets the CloudEvents source of the messages
// (events.SourceWorker).
func WithSource(s string) Option { return func(r *Redriver) { r.source = s } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Redriver) { r.log = l } }

// WithClock replaces time.Now; give the ledger the same clock.
func WithClock(now func() time.Time) Option { return func(r *Redriver) { r.now = now } }

// New returns a Redriver over the ledger that publishes with pub.
func New(l *ledger.Ledger, pub Publisher, opts ...Option) *Redriver {
	r := &Redriver{ledger: l, pub: pub, idle: 30 * time.Second, limit: 100, source: events.SourceWorker,
		log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Order publishes order.requested of o again, now: the first message if it
// was never published, else a redrive. A stopped order (ended, or in doubt)
// is not driven; that is a *ledger.StateError.
func (r *Redriver) Order(ctx context.Context, o *ledger.Order) (*ledger.Order, error) {
	if o.Status.Stopped() {
		return nil, &ledger.StateError{Op: "redrive", Status: o.Status, Reason: "it is stopped"}
	}
	var (
		ev  events.Event
		err error
	)
	if !o.RequestPublished {
		// The intake's publish never landed: this is the order's own message
		// (a publish that did land after all is dropped as its duplicate).
		ev, err = events.New(r.source, r.now(), o.Request)
	} else {
		if o, err = r.ledger.MarkRedriven(ctx, o); err != nil {
			return nil, err
		}
		ev, err = events.Redrive(r.source, r.now(), o.Request, o.Redriven)
	}
	if err != nil {
		return nil, err
	}
	ack, err := r.pub.PublishEvent(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("redrive order %s: %w", o.OrderID, err)
	}
	r.log.InfoContext(ctx, "order driven again", "orderId", o.OrderID, "msgId", ev.MsgID(), "streamSeq", ack.Sequence, "status", string(o.Status))
	return r.ledger.MarkPublished(ctx, o, ack.Sequence)
}

// Stats tells what a Sweep did.
type Stats struct {
	Open      int // orders accepted or processing
	Redriven  int // published again
	Failed    int // whose publish failed (the next sweep tries again)
	Truncated bool
}

// Sweep drives again the orders nobody drives (see the package doc), at
// most the limit per call. One order's failure does not stop the others.
func (r *Redriver) Sweep(ctx context.Context) (Stats, error) {
	var st Stats
	floor := uint64(0)
	known := r.floor != nil
	if known {
		info, err := r.floor.Info(ctx)
		if err != nil {
			return st, &provider.Error{Kind: provider.ErrUnavailable, Provider: "nats", Op: "consumer info", Message: "NATS JetStream is unavailable", Err: err}
		}
		floor = info.AckFloor.Stream
	}
	orders, err := r.ledger.List(ctx, ledger.StatusAccepted, ledger.StatusProcessing)
	if err != nil {
		return st, err
	}
	now := r.now()
	var errs []error
	for _, o := range orders {
		st.Open++
		if !Driverless(o, now, r.idle, floor, known) {
			continue
		}
		if st.Redriven+st.Failed >= r.limit {
			st.Truncated = true
			break
		}
		if _, err := r.Order(ctx, o); err != nil {
			var se *ledger.StateError
			if errors.Is(err, ledger.ErrStale) || errors.As(err, &se) {
				continue // it moved: someone drives it
			}
			st.Failed++
			errs = append(errs, err)
			continue
		}
		st.Redriven++
	}
	if st.Redriven > 0 || st.Failed > 0 {
		r.log.InfoContext(ctx, "sweep", "open", st.Open, "redriven", st.Redriven, "failed", st.Failed, "truncated", st.Truncated)
	}
	return st, errors.Join(errs...)
}

// Driverless reports whether nothing drives o at now: it is open, no claim
// on it is live, it has not changed for idle, and no message of it is left
// for the consumer to deliver (its newest is at or below the consumer's
// acknowledgement floor, when floorKnown; an order that came through an
// event trigger has no message at all).
func Driverless(o *ledger.Order, now time.Time, idle time.Duration, floor uint64, floorKnown bool) bool {
	switch {
	case o.Status != ledger.StatusAccepted && o.Status != ledger.StatusProcessing:
		return false
	case o.Claimed(now):
		return false
	case now.Sub(o.UpdatedAt) < idle:
		return false
	case floorKnown && o.MessageSeq > floor:
		return false // its message is still the consumer's to deliver
	}
	return true
}
