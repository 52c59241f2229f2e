// Package buy assembles the buy function from its parts: the order intake
// (POST /orders, GET /orders/{id}), the worker that buys each order's
// numbers exactly once, the JetStream queue and the ledger they share. The
// functions/buy binary and `xnum dev` both build it here, so every way in
// ends in the same code.
package buy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Provider buys numbers and tells how many are left.
type Provider interface {
	provider.Purchaser
	provider.Inventory
}

// Config is what the buy function needs beyond its connections.
type Config struct {
	// QPS limits BuySecretNo calls per second of this process; 0: no limit.
	QPS float64
	// Consumer runs the long-lived JetStream consumer beside the routes.
	Consumer bool
	// EventTimeout bounds each event invocation that comes without a
	// deadline of the platform's (0: none), so that a drain stops starting
	// buys before the platform's timeout kills it mid-buy. FC's go1 runtime
	// and Lambda give a deadline; FC's custom runtime does not.
	EventTimeout time.Duration
	// Accepted is called once the intake has durably accepted an order,
	// such as to wake the worker function up on FC (wakeup.Waker.Accepted).
	Accepted func(ctx context.Context, order events.OrderRequested)
	Logger   *slog.Logger
	// Queue and Worker pass options through, e.g. for replicas or tests.
	Queue  []queue.Option
	Worker []worker.Option
}

// Function is the assembled buy function and its parts.
type Function struct {
	trigger.Function
	Queue  *queue.Queue
	Ledger *ledger.Ledger
	Worker *worker.Worker
	Intake *intake.Handler
}

// New sets up the queue on js (idempotently, as every start does) and
// builds the function.
func New(ctx context.Context, js jetstream.JetStream, p Provider, cfg Config) (*Function, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	q, err := queue.Setup(ctx, js, cfg.Queue...)
	if err != nil {
		return nil, fmt.Errorf("buy: set up JetStream: %w", err)
	}
	l := ledger.New(q.Ledger)
	pub := q.Publisher()
	w, err := worker.New(l, pub, p, p, append([]worker.Option{
		worker.WithBuyQPS(cfg.QPS),
		worker.WithLogger(logger),
	}, cfg.Worker...)...)
	if err != nil {
		return nil, fmt.Errorf("buy: worker: %w", err)
	}
	inOpts := []intake.Option{intake.WithLogger(logger)}
	if cfg.Accepted != nil {
		inOpts = append(inOpts, intake.WithAccepted(cfg.Accepted))
	}
	in := intake.New(l, pub, inOpts...)
	work := withWakeups(trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
		return handleEvents(ctx, w, q, logger, msgs)
	}))
	var events trigger.EventHandler = handOff{pub: pub, worker: work, accepted: cfg.Accepted, log: logger, now: time.Now}
	if cfg.EventTimeout > 0 {
		events = withDefaultTimeout(events, cfg.EventTimeout)
	}
	fn := &Function{
		Function: trigger.Function{Name: "buy", HTTP: in, Events: events},
		Queue:    q, Ledger: l, Worker: w, Intake: in,
	}
	if cfg.Consumer {
		fn.Background = []func(context.Context) error{func(ctx context.Context) error { return w.Run(ctx, q) }}
	}
	return fn, nil
}

// drainLimit bounds the orders one timer invocation takes from the queue.
const drainLimit = 100

// handleEvents is the buy function's event invocation: an FC timer's drains
// the queue (and sweeps the ledger for orders nothing drives); every other
// message is an order.
func handleEvents(ctx context.Context, w *worker.Worker, q *queue.Queue, log *slog.Logger, msgs []trigger.Message) []error {
	errs := make([]error, len(msgs))
	var bodies [][]byte
	var at []int
	for i, m := range msgs {
		if m.Source != trigger.SourceTimer {
			bodies, at = append(bodies, m.Body), append(at, i)
			continue
		}
		st, err := w.Drain(ctx, q, drainLimit)
		log.InfoContext(ctx, "drained", "messages", st.Messages, "advisories", st.Advisories, "redriven", st.Redriven)
		errs[i] = err
	}
	for j, err := range w.HandleOrders(ctx, bodies) {
		errs[at[j]] = err
	}
	return errs
}

// withDefaultTimeout bounds the invocations of h that have no deadline by d.
// A deadline the platform gave is the truth and is kept, shorter or longer.
func withDefaultTimeout(h trigger.EventHandler, d time.Duration) trigger.EventHandler {
	return trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return h.HandleEvents(ctx, msgs)
	})
}
