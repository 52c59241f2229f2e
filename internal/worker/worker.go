// Package worker is the buy function's order processor: it takes one
// order.requested message, claims the order in the ledger, checks the
// inventory, buys the numbers one at a time within the provider's rate limit,
// and publishes number.purchased per number and one terminal event, so that
// one order id buys at most its quantity however often and wherever its
// message is delivered.
//
// The same code runs for every trigger: a long-lived JetStream consumer
// (Run), a drain of a batch within a deadline (Drain, for an FC timer), and
// one message of an event invocation (HandleOrder, HandleEvents).
//
// # Ordering, and why it keeps the money rule
//
//   - The buy attempt is written to the ledger (compare-and-set on the
//     revision that holds our claim) before BuySecretNo is called. Whoever
//     later finds an attempt without a result cannot know whether it bought,
//     so it puts the order in doubt and never buys again for it.
//   - Of any number of workers that read the same revision only one can
//     record the attempt; a take-over of a lapsed claim changes the revision,
//     so the old owner's next write fails and it stops.
//   - A bought number is written to the ledger (retried until
//     WithRecordTimeout) before its event is published; the event's Msg-Id is
//     stable, so a republish after a crash is dropped as a duplicate.
//   - The terminal status is written before its event is published, and the
//     message is acked (double ack) only after every event got its PubAck. A
//     crash anywhere leaves a state that the next delivery resumes or replays.
//   - Only a refusal that proves nothing was bought (throttled or unavailable:
//     an answer came back) is retried; a timeout, a cut connection or an
//     unmapped error is in doubt.
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
	"github.com/xnum-dev/xnum/internal/queue"
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

// WithBuyQPS limits BuySecretNo calls of this worker to qps per second
// (XNUM_ALIYUN_BUY_QPS); 0 means no limit. Workers in other processes have
// their own limiter, so divide the provider's limit among them.
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
// (default 10s): after giving up retries, or while another worker holds the
// order (then until its lease ends, if sooner).
func WithNakDelay(d time.Duration) Option { return func(w *Worker) { w.nakDelay = d } }

// WithBuyTimeout bounds one BuySecretNo call (default 20s, above the aliyun
// client's connect and read timeouts). A buy is not
// started with less than this left before the context's deadline, and a
// started buy is not cut short by a cancelled context (only by this
// timeout), so stopping a worker does not make buys in doubt.
func WithBuyTimeout(d time.Duration) Option { return func(w *Worker) { w.buyTimeout = d } }

// WithRecordTimeout bounds how long the worker keeps trying to write a bought
// number to the ledger (default 2m). Past it the number is logged at error
// level and the order will go in doubt on its next delivery.
func WithRecordTimeout(d time.Duration) Option { return func(w *Worker) { w.recordTimeout = d } }

// WithFaultHook installs a Hook, for tests.
func WithFaultHook(h Hook) Option { return func(w *Worker) { w.hook = h } }

// WithClock replaces time.Now for event times and lease decisions; give the
// ledger the same clock.
func WithClock(now func() time.Time) Option { return func(w *Worker) { w.now = now } }

// WithSource sets the CloudEvents source of the events (events.SourceWorker).
func WithSource(s string) Option { return func(w *Worker) { w.source = s } }

// WithConcurrency sets how many orders Run processes at once (default 4).
func WithConcurrency(n int) Option { return func(w *Worker) { w.concurrency = n } }

// WithPullExpiry sets how long Run's pull requests live (default 10s). The
// server heartbeats at half of it, and a consumer that misses two
// heartbeats (the server restarted) pulls again, so this bounds how long Run
// stalls after an outage.
func WithPullExpiry(d time.Duration) Option { return func(w *Worker) { w.pullExpiry = d } }

// WithQueue gives the worker the JetStream objects that HandleEvents drains
// on an FC timer invocation.
func WithQueue(q *queue.Queue) Option { return func(w *Worker) { w.queue = q } }

// Worker processes orders. It is safe for concurrent use.
type Worker struct {
	ledger   *ledger.Ledger
	pub      Publisher
	buyer    provider.Purchaser
	inv      provider.Inventory
	name     string
	log      *slog.Logger
	limiter  *rate.Limiter
	lease    time.Duration
	retries  int
	backoff  time.Duration
	nakDelay time.Duration

	buyTimeout    time.Duration
	recordTimeout time.Duration
	hook          Hook
	now           func() time.Time
	source        string
	concurrency   int
	pullExpiry    time.Duration
	queue         *queue.Queue

	stats counters
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
		name:          "worker-" + hex.EncodeToString(b[:]),
		log:           slog.New(slog.DiscardHandler),
		limiter:       rate.NewLimiter(rate.Inf, 1),
		lease:         45 * time.Second,
		retries:       3,
		backoff:       500 * time.Millisecond,
		nakDelay:      10 * time.Second,
		buyTimeout:    20 * time.Second,
		recordTimeout: 2 * time.Minute,
		now:           time.Now,
		source:        events.SourceWorker,
		concurrency:   4,
		pullExpiry:    10 * time.Second,
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
	}
	w.log = w.log.With("worker", w.name)
	return w, nil
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
}

type counters struct {
	messages, acked, retried, terminated, aborted, buys, bought, refused, inDoubt, completed, failed atomic.Int64
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	c := &w.stats
	return Stats{
		Messages: c.messages.Load(), Acked: c.acked.Load(), Retried: c.retried.Load(),
		Terminated: c.terminated.Load(), Aborted: c.aborted.Load(), Buys: c.buys.Load(),
		Bought: c.bought.Load(), Refused: c.refused.Load(), InDoubt: c.inDoubt.Load(),
		Completed: c.completed.Load(), Failed: c.failed.Load(),
	}
}

// newOwner names one processing of one message: two deliveries of one order
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
