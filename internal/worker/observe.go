package worker

import (
	"context"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Observer is told what the worker does, for metrics (internal/metrics
// implements it). Its methods run on the worker's goroutines, with the
// context of the message at hand, and must return at once.
type Observer interface {
	// Delivery: one message was processed, with the result Acked, Retried,
	// Terminated or Aborted, in took.
	Delivery(ctx context.Context, result string, took time.Duration)
	// Buy: one BuySecretNo call was Bought, Refused (kind says why) or
	// InDoubt.
	Buy(ctx context.Context, outcome string, kind provider.Kind)
	// Order: an order Completed, Failed or stopped InDoubt, or a buy's late
	// answer Settled its attempt in doubt; age is how long ago the order
	// was accepted.
	Order(ctx context.Context, outcome string, age time.Duration)
	// Redriven: n orders that nothing drove were published again.
	Redriven(ctx context.Context, n int)
}

// What an Observer is told.
const (
	Acked      = "ack"
	Retried    = "retry"
	Terminated = "term"
	Aborted    = "abort"

	Bought    = "bought"
	Refused   = "refused"
	InDoubt   = "in_doubt"
	Completed = "completed"
	Failed    = "failed"
	Settled   = "settled"
)

// WithObserver sets the Observer (default: none).
func WithObserver(o Observer) Option { return func(w *Worker) { w.obs = o } }

type nopObserver struct{}

func (nopObserver) Delivery(context.Context, string, time.Duration) {}
func (nopObserver) Buy(context.Context, string, provider.Kind)      {}
func (nopObserver) Order(context.Context, string, time.Duration)    {}
func (nopObserver) Redriven(context.Context, int)                   {}
func (v verdict) String() string                                    { return verdictNames[v] }
func (w *Worker) age(createdAt time.Time) time.Duration             { return max(0, w.now().Sub(createdAt)) }

var verdictNames = [...]string{vAck: Acked, vRetry: Retried, vTerm: Terminated, vAbort: Aborted}

// settledByAnswer tells the Observer when the answer of attempt seq, just
// recorded, settled that attempt in doubt (ledger.RecordPurchase and
// AbandonAttempt record such a settlement by "worker"; an attempt has one
// answer, so it is told once).
func (w *Worker) settledByAnswer(ctx context.Context, o *ledger.Order, seq int) {
	if n := len(o.Settlements); n > 0 && o.Settlements[n-1].Attempt == seq && o.Settlements[n-1].By == "worker" {
		w.obs.Order(ctx, Settled, w.age(o.CreatedAt))
	}
}

// messageContext is ctx for the work on one order message: a span of the
// trace the message carries (its traceparent extension), else of the
// trace ctx already has (an invocation's), else of a new one; and the
// message's request id where ctx has none (a consumer's delivery), so the
// worker's log lines of an order share the trace, and the request id, of
// the request that took it in.
func messageContext(ctx context.Context, body []byte) context.Context {
	tp, rid := events.PeekTrace(body)
	parent, err := traceparent.Parse(tp)
	if err != nil {
		parent, _ = traceparent.From(ctx)
	}
	ctx = traceparent.With(ctx, parent.Child())
	if logging.RequestID(ctx) == "" && httpjson.ValidRequestID(rid) {
		ctx = logging.WithRequestID(ctx, rid)
	}
	return ctx
}
