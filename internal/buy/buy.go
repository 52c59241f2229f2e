// Package buy assembles the buy function from its parts: the order intake
// (POST /orders, GET /orders/{id}), the worker that buys each order's
// numbers exactly once, the settler that settles its attempts in doubt from
// the cloud's number reports, the JetStream queue and the ledger they share. The
// functions/buy binary and `xnum dev` both build it here, so every way in
// ends in the same code.
package buy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/ratelimit"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Provider buys numbers, tells how many are left, and looks bought numbers
// up (for settling attempts in doubt).
type Provider interface {
	provider.Purchaser
	provider.Inventory
	reconcile.Provider
}

// Role is what a buy process serves.
type Role string

// The roles. The intake never buys: it is the part callers reach, and FC
// gives it a short timeout.
const (
	// RoleAll serves the routes and buys; the zero value is the same.
	RoleAll Role = "all"
	// RoleIntake serves POST /orders and GET /orders/{id}, hands orders from
	// queue triggers to JetStream, and refuses every other event.
	RoleIntake Role = "intake"
	// RoleWorker buys orders from events and the consumer, settles buys
	// from the cloud's number reports, and serves no routes.
	RoleWorker Role = "worker"
)

// intakeRefusal is why the intake refuses an event invocation that would
// buy or settle.
const intakeRefusal = "this is the buy intake (XNUM_BUY_ROLE=intake): it takes orders and never buys; " +
	"send timer drains, wake-ups, direct orders and number reports to the buy worker (XNUM_BUY_ROLE=worker)"

// buyRateKey is the entry of the limits bucket that spaces BuySecretNo
// calls across every worker.
const buyRateKey = "dyplsapi.BuySecretNo"

// Function is the assembled buy function and its parts: Worker and Settler
// are nil for RoleIntake, Intake for RoleWorker.
type Function struct {
	trigger.Function
	Queue   *queue.Queue
	Ledger  *ledger.Ledger
	Worker  *worker.Worker
	Settler *settle.Settler
	Intake  *intake.Handler
}

// New opens the queue on js (creating what is missing, as every start
// does) and builds the function of cfg.Role.
func New(ctx context.Context, js jetstream.JetStream, p Provider, cfg Config) (*Function, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.checkRole(); err != nil {
		return nil, err
	}
	q, err := queue.Setup(ctx, js, cfg.Queue...)
	if err != nil {
		return nil, fmt.Errorf("buy: set up JetStream: %w", err)
	}
	l := ledger.New(q.Ledger)
	pub := q.Publisher()
	fn := &Function{Function: trigger.Function{Name: "buy"}, Queue: q, Ledger: l}
	fn.Ready = fn.ready
	if cfg.Role != RoleWorker {
		inOpts := []intake.Option{intake.WithLogger(logger)}
		if cfg.Accepted != nil {
			inOpts = append(inOpts, intake.WithAccepted(cfg.Accepted))
		}
		fn.Intake = intake.New(l, pub, inOpts...)
		fn.HTTP = fn.Intake
		if cfg.Metrics != nil {
			fn.HTTP = cfg.Metrics.Intake(fn.Intake)
		}
	}
	// What is not handed to JetStream goes to the worker and the reports
	// intake, or, in the intake, is refused.
	work, reps := refuse(intakeRefusal), refuse(intakeRefusal)
	if cfg.Role != RoleIntake {
		limit := worker.WithBuyQPS(0)
		if cfg.QPS > 0 {
			shared, err := ratelimit.New(q.Limits, buyRateKey, cfg.QPS)
			if err != nil {
				return nil, fmt.Errorf("buy: %w", err)
			}
			limit = worker.WithLimiter(shared)
		}
		wopts := []worker.Option{limit, worker.WithLogger(logger)}
		if cfg.Lease > 0 {
			wopts = append(wopts, worker.WithLease(cfg.Lease))
		}
		if cfg.SweepEvery > 0 || cfg.SweepIdle > 0 {
			wopts = append(wopts, worker.WithSweep(cmp.Or(cfg.SweepEvery, worker.DefaultSweepEvery), cmp.Or(cfg.SweepIdle, worker.DefaultSweepIdle)))
		}
		ropts := cfg.Reconcile
		if cfg.Metrics != nil {
			wopts = append(wopts, worker.WithObserver(cfg.Metrics))
			ropts = append([]reconcile.Option{reconcile.WithObserver(cfg.Metrics)}, ropts...)
		}
		w, err := worker.New(l, pub, p, p, append(wopts, cfg.Worker...)...)
		if err != nil {
			return nil, fmt.Errorf("buy: worker: %w", err)
		}
		rd := redrive.New(l, pub, redrive.WithSource(events.SourceWorker), redrive.WithLogger(logger))
		wait := cfg.ReportsWait
		if wait == 0 {
			wait = settle.DefaultWait
		}
		s, err := settle.New(l, reconcile.New(l, p, rd, ropts...), q.Reports, append([]settle.Option{
			settle.WithWait(wait), settle.WithLogger(logger),
		}, cfg.Settle...)...)
		if err != nil {
			return nil, fmt.Errorf("buy: settler: %w", err)
		}
		fn.Worker, fn.Settler = w, s
		work = withWakeups(trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			return fn.handleEvents(ctx, cfg.Metrics, logger, msgs)
		}))
		reps = reportIntake{pub: q.Publisher(queue.WithExpectStream(queue.ReportsStreamName)), settler: s, log: logger}
		if cfg.Consumer {
			fn.Background = []func(context.Context) error{fn.consume}
		}
	}
	fn.Events = handOff{pub: pub, worker: work, reports: reps, accepted: cfg.Accepted, log: logger, now: time.Now}
	if cfg.EventTimeout > 0 {
		fn.Events = withDefaultTimeout(fn.Events, cfg.EventTimeout)
	}
	if cfg.Metrics != nil {
		cfg.Metrics.WatchState(fn.State)
	}
	return fn, nil
}

// checkRole checks cfg's role, the zero value meaning RoleAll.
func (cfg *Config) checkRole() error {
	if cfg.Role == "" {
		cfg.Role = RoleAll
	}
	switch {
	case cfg.Role != RoleAll && cfg.Role != RoleIntake && cfg.Role != RoleWorker:
		return fmt.Errorf("buy: role %q, want intake, worker or all", cfg.Role)
	case cfg.Role == RoleIntake && cfg.Consumer:
		return errors.New("buy: the intake role runs no consumer: it never buys")
	}
	return nil
}

// refuse answers every message with an InvalidParameter error saying why.
func refuse(why string) trigger.EventHandler {
	return trigger.EventHandlerFunc(func(_ context.Context, msgs []trigger.Message) []error {
		errs := make([]error, len(msgs))
		for i := range errs {
			errs[i] = &provider.Error{Kind: provider.ErrInvalidParameter, Message: why, Err: trigger.ErrNoEvents}
		}
		return errs
	})
}

// consume runs the long-lived consumer — the worker and the settler side
// by side — until ctx ends.
func (f *Function) consume(ctx context.Context) error {
	settled := make(chan error, 1)
	go func() { settled <- f.Settler.Run(ctx, f.Queue) }()
	err := f.Worker.Run(ctx, f.Queue)
	return errors.Join(err, <-settled)
}

// drainLimit bounds the orders one timer invocation takes from the queue.
const drainLimit = 100

// handleEvents is the buy function's event invocation: an FC timer's drains
// the queue (and sweeps the ledger for orders nothing drives), with a
// settlement pass before (what it settles is bought in the same drain) and,
// if the drain put orders in doubt, after; then it reads the State for the
// invocation's metrics. Every other message is an order.
func (f *Function) handleEvents(ctx context.Context, m *metrics.Metrics, log *slog.Logger, msgs []trigger.Message) []error {
	w, s, q := f.Worker, f.Settler, f.Queue
	errs := make([]error, len(msgs))
	var bodies [][]byte
	var at []int
	pass := func() {
		st, err := s.Pass(ctx)
		if err != nil {
			log.WarnContext(ctx, "settling from the reports failed; the next pass tries again", "err", err)
		} else if st.Open > 0 {
			log.InfoContext(ctx, "settlement pass", "inDoubt", st.Open, "settled", st.Settled, "leftToOperator", st.Left, "waiting", st.Waiting)
		}
	}
	for i, msg := range msgs {
		if msg.Source != trigger.SourceTimer {
			bodies, at = append(bodies, msg.Body), append(at, i)
			continue
		}
		pass()
		before := w.Stats().InDoubt
		st, err := w.Drain(ctx, q, drainLimit)
		log.InfoContext(ctx, "drained", "messages", st.Messages, "advisories", st.Advisories, "redriven", st.Redriven)
		errs[i] = err
		if w.Stats().InDoubt > before {
			pass()
		}
		if m == nil {
			continue
		}
		// FC freezes the instance between invocations and nothing scrapes
		// it: each drain puts the ledger's gauges in its metrics line.
		if st, err := f.State(ctx); err == nil {
			m.ObserveState(ctx, st)
		} else {
			log.WarnContext(ctx, "ledger state not read for the metrics", "err", err)
		}
	}
	for j, err := range w.HandleOrders(ctx, bodies) {
		errs[at[j]] = err
	}
	return errs
}

// State reads what the ledger (one watch pass) and the order consumer hold
// now: the metrics' gauges.
func (f *Function) State(ctx context.Context) (metrics.State, error) {
	orders, err := f.Ledger.List(ctx)
	if err != nil {
		return metrics.State{}, err
	}
	sum := ledger.Summarize(orders)
	st := metrics.State{Open: map[string]int{}}
	for _, s := range metrics.OpenStatuses {
		st.Open[s] = sum.ByStatus[ledger.Status(s)]
	}
	if o := sum.OldestOpen; o != nil {
		st.Oldest = max(0, f.Ledger.Now().Sub(o.CreatedAt))
	}
	ci, err := f.Queue.Consumer.Info(ctx)
	if err != nil {
		return metrics.State{}, queue.Unavailable("order consumer info", err)
	}
	st.Pending, st.AckPending = ci.NumPending, uint64(max(0, ci.NumAckPending))
	return st, nil
}

// ready reports whether the function can take and buy orders: its stream
// and order consumer answer.
func (f *Function) ready(ctx context.Context) error {
	if _, err := f.Queue.Stream.Info(ctx); err != nil {
		return queue.Unavailable("stream "+f.Queue.Config.Stream, err)
	}
	if _, err := f.Queue.Consumer.Info(ctx); err != nil {
		return queue.Unavailable("consumer "+f.Queue.Config.Consumer, err)
	}
	return nil
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
