// Package worker is the buy function's order processor: it takes one
// order.requested message, claims the order in the ledger, checks the
// inventory, buys the numbers one at a time within the provider's rate limit,
// and publishes number.purchased per number and one terminal event, so that
// one order id buys at most its quantity however often and wherever its
// message is delivered.
//
// The same code runs for every trigger: a long-lived JetStream consumer
// (Run), a drain of what waits within a deadline (Drain), and the orders of
// an event invocation (HandleOrder, HandleOrders). Run and Drain also sweep
// the ledger for open orders nothing drives any more and publish them again
// (internal/redrive).
//
// # Ordering, and why it keeps the money rule
//
//   - A delivery claims the order under an owner of its own and keeps it:
//     when another writer records a fact on the order meanwhile (a published
//     flag, a late answer), the delivery reads the order again and goes on
//     under the same claim. It gives the claim back before it asks for a
//     later delivery.
//   - The buy attempt is written to the ledger (compare-and-set on the
//     revision that holds the claim) before BuySecretNo is called, with the
//     times its answer may arrive and be recorded. Whoever later finds an
//     attempt without a result cannot know whether it bought, so it puts the
//     order in doubt and never buys again for it.
//   - Only a refusal the provider documents as made before it acted proves
//     nothing was bought (pkg/provider/aliyun's allowlist; every other error
//     of a buy is provider.ErrInDoubt). Such a refusal is retried; anything
//     else puts the order in doubt.
//   - A bought number is written to the ledger (retried until
//     WithRecordTimeout) before its event is published; the event's Msg-Id is
//     stable, so a republish after a crash is dropped as a duplicate. A
//     number whose answer came after its attempt was settled, with the order
//     complete, is kept as excess and published as number.excess.
//   - The terminal status is written before its event is published, and the
//     message is acked (double ack) only after every event got its PubAck. A
//     crash anywhere leaves a state that the next delivery resumes or replays,
//     or that the sweep gives a new message.
//   - An order delivered by an event trigger counts its deliveries in the
//     ledger and ends on the last one the worker allows
//     (WithEventDeliveries), so no order depends on a platform's retries.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Publisher publishes an event and waits for the stream's ack
// (*queue.Publisher).
type Publisher interface {
	PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error)
}

// Point is a named place in the processing of an order where a test can
// make the worker stop as if it crashed (WithFaultHook).
type Point string

const (
	AfterClaim  Point = "after-claim"  // the order is claimed, nothing bought in this run
	AfterBuy    Point = "after-buy"    // BuySecretNo answered a number; the ledger does not know it yet
	AfterRecord Point = "after-record" // the number is in the ledger; its event is not published
	BeforeAck   Point = "before-ack"   // ledger and events are durable; the message is not acked
)

// Hook is called at each Point. A non-nil error aborts the processing there
// at once: no more ledger writes, no events, no ack or nak, as a crash would.
type Hook func(ctx context.Context, p Point, orderID string) error

// Option configures a Worker.
type Option func(*Worker)

// WithName names the worker in claims, attempts and logs (default "worker-"
// and random hex).
func WithName(name string) Option { return func(w *Worker) { w.name = name } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(w *Worker) { w.log = l } }

// Limiter spaces BuySecretNo calls: Wait returns when the next may start,
// or an error when it may not start before ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// WithLimiter spaces BuySecretNo calls with l, such as a rate the workers of
// every process share (internal/ratelimit).
func WithLimiter(l Limiter) Option { return func(w *Worker) { w.limiter = l } }

// WithBuyQPS limits BuySecretNo calls of this worker to qps per second, in
// this process only; 0 means no limit. It is the default limiter; workers
// in several processes share one rate with WithLimiter.
func WithBuyQPS(qps float64) Option {
	return func(w *Worker) {
		if qps <= 0 {
			w.limiter = rate.NewLimiter(rate.Inf, 1)
			return
		}
		w.limiter = rate.NewLimiter(rate.Limit(qps), 1)
	}
}

// WithLease sets how long a claim lasts without a ledger write (default 45s).
// A worker renews it with every buy; a lapsed lease may be taken over.
func WithLease(d time.Duration) Option { return func(w *Worker) { w.lease = d } }

// WithRetry sets how many times in a row a buy refused as throttled or
// unavailable is retried within one delivery (default 3), and the first
// backoff, which doubles (default 500ms).
func WithRetry(n int, backoff time.Duration) Option {
	return func(w *Worker) { w.retries, w.backoff = n, backoff }
}

// WithNakDelay sets the longest delay of a redelivery the worker asks for
// (default 10s): after giving up retries, or while another delivery holds
// the order (then until its lease ends, if sooner).
func WithNakDelay(d time.Duration) Option { return func(w *Worker) { w.nakDelay = d } }

// WithBuyTimeout bounds one BuySecretNo call (default 20s, above the aliyun
// client's connect and read timeouts). A buy is not started with less than
// this left before the context's deadline, and a started buy is not cut
// short by a cancelled context (only by this timeout), so stopping a worker
// does not make buys in doubt.
func WithBuyTimeout(d time.Duration) Option { return func(w *Worker) { w.buyTimeout = d } }

// WithRecordTimeout bounds how long the worker keeps trying to write a bought
// number to the ledger (default 2m). Past it the number is logged at error
// level and the order will go in doubt on its next delivery.
func WithRecordTimeout(d time.Duration) Option { return func(w *Worker) { w.recordTimeout = d } }

// WithEventDeliveries sets how many deliveries through an event trigger
// (HandleOrder: FC events, EventBridge, SQS) an order gets before the worker
// gives up on it and ends it (default 10, as the JetStream consumer's
// MaxDeliver): such triggers tell no delivery count, so the ledger keeps it.
func WithEventDeliveries(n int) Option { return func(w *Worker) { w.eventDeliveries = n } }

// Defaults of WithSweep.
const (
	DefaultSweepEvery = 30 * time.Second
	DefaultSweepIdle  = time.Minute
)

// WithSweep sets how often Run sweeps the ledger for open orders nothing
// drives (DefaultSweepEvery) and how long such an order must have been idle
// before it is published again (DefaultSweepIdle). Drain sweeps once per
// call.
func WithSweep(every, idle time.Duration) Option {
	return func(w *Worker) { w.sweepEvery, w.sweepIdle = every, idle }
}

// WithFaultHook installs a Hook, for tests.
func WithFaultHook(h Hook) Option { return func(w *Worker) { w.hook = h } }

// WithClock replaces time.Now for event times and lease decisions; give the
// ledger the same clock.
func WithClock(now func() time.Time) Option { return func(w *Worker) { w.now = now } }

// WithSource sets the CloudEvents source of the events (events.SourceWorker).
func WithSource(s string) Option { return func(w *Worker) { w.source = s } }

// WithConcurrency sets how many orders the worker processes at once
// (default 4).
func WithConcurrency(n int) Option { return func(w *Worker) { w.concurrency = n } }

// WithPullExpiry sets how long Run's pull requests live (default 10s). The
// server heartbeats at half of it, and a consumer that misses two
// heartbeats (the server restarted) pulls again, so this bounds how long Run
// stalls after an outage.
func WithPullExpiry(d time.Duration) Option { return func(w *Worker) { w.pullExpiry = d } }

// Worker processes orders. It is safe for concurrent use.
type Worker struct {
	ledger   *ledger.Ledger
	pub      Publisher
	buyer    provider.Purchaser
	inv      provider.Inventory
	name     string
	log      *slog.Logger
	limiter  Limiter
	lease    time.Duration
	retries  int
	backoff  time.Duration
	nakDelay time.Duration

	buyTimeout      time.Duration
	recordTimeout   time.Duration
	eventDeliveries int
	sweepEvery      time.Duration
	sweepIdle       time.Duration
	hook            Hook
	now             func() time.Time
	source          string
	concurrency     int
	pullExpiry      time.Duration

	redrive *redrive.Redriver
	stats   counters
	obs     Observer
}

// New returns a Worker that keeps orders in l, publishes with pub, buys with
// buyer and checks stock with inv.
func New(l *ledger.Ledger, pub Publisher, buyer provider.Purchaser, inv provider.Inventory, opts ...Option) (*Worker, error) {
	if l == nil || pub == nil || buyer == nil || inv == nil {
		return nil, errors.New("worker: ledger, publisher, purchaser and inventory are required")
	}
	var b [4]byte
	rand.Read(b[:])
	w := &Worker{
		ledger: l, pub: pub, buyer: buyer, inv: inv,
		name:            "worker-" + hex.EncodeToString(b[:]),
		log:             slog.New(slog.DiscardHandler),
		limiter:         rate.NewLimiter(rate.Inf, 1),
		lease:           45 * time.Second,
		retries:         3,
		backoff:         500 * time.Millisecond,
		nakDelay:        10 * time.Second,
		buyTimeout:      20 * time.Second,
		recordTimeout:   2 * time.Minute,
		eventDeliveries: 10,
		sweepEvery:      DefaultSweepEvery,
		sweepIdle:       DefaultSweepIdle,
		now:             time.Now,
		source:          events.SourceWorker,
		concurrency:     4,
		pullExpiry:      10 * time.Second,
		obs:             nopObserver{},
	}
	for _, o := range opts {
		o(w)
	}
	switch {
	case w.lease <= 0 || w.nakDelay <= 0 || w.buyTimeout <= 0 || w.recordTimeout <= 0:
		return nil, errors.New("worker: lease, nak delay, buy timeout and record timeout must be positive")
	case w.retries < 0 || w.backoff < 0:
		return nil, errors.New("worker: retries and backoff must not be negative")
	case w.concurrency < 1:
		return nil, errors.New("worker: concurrency must be at least 1")
	case w.pullExpiry < time.Second:
		return nil, errors.New("worker: pull expiry must be at least 1s")
	case w.eventDeliveries < 1:
		return nil, errors.New("worker: event deliveries must be at least 1")
	case w.sweepEvery <= 0 || w.sweepIdle <= 0:
		return nil, errors.New("worker: the sweep's interval and idle time must be positive")
	}
	if w.obs == nil {
		w.obs = nopObserver{}
	}
	w.log = w.log.With("worker", w.name)
	w.redrive = w.redriver()
	return w, nil
}

// redriver returns the worker's Redriver, with extra options.
func (w *Worker) redriver(opts ...redrive.Option) *redrive.Redriver {
	return redrive.New(w.ledger, w.pub, append([]redrive.Option{
		redrive.WithIdle(w.sweepIdle), redrive.WithSource(w.source), redrive.WithLogger(w.log), redrive.WithClock(w.now),
	}, opts...)...)
}

// Name is the worker's name.
func (w *Worker) Name() string { return w.name }

// Stats counts what a Worker did since it was made.
type Stats struct {
	Messages   int64 // messages processed (every trigger)
	Acked      int64 // done: acked, or nil returned to an event trigger
	Retried    int64 // nak'ed, or an error returned for the trigger to retry
	Terminated int64 // refused without an order to fail (no usable id, or another order's id)
	Aborted    int64 // stopped by the fault hook
	Buys       int64 // BuySecretNo calls
	Bought     int64 // numbers bought
	Refused    int64 // buys refused (nothing bought)
	InDoubt    int64 // orders put in doubt
	Completed  int64
	Failed     int64
	Redriven   int64 // orders published again by the sweep or after a late settlement
}

type counters struct {
	messages, acked, retried, terminated, aborted, buys, bought, refused, inDoubt, completed, failed, redriven atomic.Int64
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	c := &w.stats
	return Stats{
		Messages: c.messages.Load(), Acked: c.acked.Load(), Retried: c.retried.Load(),
		Terminated: c.terminated.Load(), Aborted: c.aborted.Load(), Buys: c.buys.Load(),
		Bought: c.bought.Load(), Refused: c.refused.Load(), InDoubt: c.inDoubt.Load(),
		Completed: c.completed.Load(), Failed: c.failed.Load(), Redriven: c.redriven.Load(),
	}
}

// newOwner names one delivery of one message: two deliveries of one order
// in one worker must not both think they hold its claim.
func (w *Worker) newOwner() string {
	var b [6]byte
	rand.Read(b[:])
	return w.name + "/" + hex.EncodeToString(b[:])
}

func (w *Worker) fault(ctx context.Context, p Point, id string) error {
	if w.hook == nil {
		return nil
	}
	if err := w.hook(ctx, p, id); err != nil {
		return fmt.Errorf("worker: aborted at %s: %w", p, err)
	}
	return nil
}
