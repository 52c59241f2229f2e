package wakeup

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xnum-dev/xnum/events"
)

// Defaults of a Waker.
const (
	// MaxOrders is the most orders one wake-up carries: 100 orders are about
	// 25 KB, well inside FC's 128 KB for an asynchronous payload, and as many
	// as the worker's timer drain takes in one invocation.
	MaxOrders = 100
	// DefaultTimeout bounds one hand-over to FC, which an order's POST waits for.
	DefaultTimeout = 2 * time.Second
)

// Invoker runs a function asynchronously (*Client).
type Invoker interface {
	InvokeAsync(ctx context.Context, function string, payload []byte) (string, error)
}

// Waker wakes the worker function up for the orders an intake accepts,
// coalescing them as the package documentation says. It is safe for
// concurrent use.
type Waker struct {
	inv       Invoker
	function  string
	log       *slog.Logger
	timeout   time.Duration
	maxOrders int

	slot chan struct{} // held by the one hand-over in flight
	mu   sync.Mutex
	open *batch // the batch orders join; nil when none is open

	invocations, orders, failures atomic.Int64
}

// batch is the orders of one wake-up. done closes once it was handed over
// or failed.
type batch struct {
	ids    []string
	orders []json.RawMessage
	done   chan struct{}
}

// WakerOption configures a Waker.
type WakerOption func(*Waker)

// WithLogger sets the logger of failed (warn) and sent (debug) wake-ups.
func WithLogger(l *slog.Logger) WakerOption { return func(w *Waker) { w.log = l } }

// WithTimeout bounds one hand-over to FC (default DefaultTimeout).
func WithTimeout(d time.Duration) WakerOption { return func(w *Waker) { w.timeout = d } }

// WithMaxOrders bounds the orders of one wake-up (default MaxOrders).
func WithMaxOrders(n int) WakerOption { return func(w *Waker) { w.maxOrders = n } }

// NewWaker returns a Waker that invokes function through inv.
func NewWaker(inv Invoker, function string, opts ...WakerOption) *Waker {
	w := &Waker{inv: inv, function: function, log: slog.New(slog.DiscardHandler),
		timeout: DefaultTimeout, maxOrders: MaxOrders, slot: make(chan struct{}, 1)}
	for _, o := range opts {
		o(w)
	}
	w.maxOrders = max(w.maxOrders, 1)
	return w
}

// Accepted hands order, which the intake has durably accepted, to a wake-up
// of the worker, and returns once that wake-up was handed to FC or failed
// (or ctx ended). It never fails: a failed wake-up is logged, and the
// worker's timer drain takes the order. Its signature is what
// intake.WithAccepted takes.
func (w *Waker) Accepted(ctx context.Context, order events.OrderRequested) {
	body, err := json.Marshal(order)
	if err != nil { // an OrderRequested always marshals; say so if it ever does not
		w.log.WarnContext(ctx, "wake-up skipped: the order does not marshal", "orderId", order.OrderID, "reason", err.Error())
		return
	}
	w.mu.Lock()
	b, lead := w.open, false
	if b == nil {
		b, lead = &batch{done: make(chan struct{})}, true
		w.open = b
	}
	b.ids = append(b.ids, order.OrderID)
	b.orders = append(b.orders, body)
	if len(b.orders) >= w.maxOrders {
		w.open = nil // full: the next order starts another
	}
	w.mu.Unlock()

	if lead {
		w.send(ctx, b)
		return
	}
	select {
	case <-b.done:
	case <-ctx.Done():
	}
}

// send waits for the wake-up in flight, closes b to new orders and hands it
// to FC. It runs on the context of the order that opened b, detached from
// its cancellation: the batch carries other requests' orders too.
func (w *Waker) send(ctx context.Context, b *batch) {
	defer close(b.done)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.timeout)
	defer cancel()
	var err error
	select {
	case w.slot <- struct{}{}:
		w.mu.Lock()
		if w.open == b {
			w.open = nil
		}
		w.mu.Unlock()
		err = w.invoke(ctx, b)
		<-w.slot
	case <-ctx.Done():
		w.mu.Lock()
		if w.open == b {
			w.open = nil
		}
		w.mu.Unlock()
		err = errors.New("the wake-up before it did not finish in time")
	}
	w.invocations.Add(1)
	w.orders.Add(int64(len(b.ids)))
	if err != nil {
		w.failures.Add(1)
		w.log.WarnContext(ctx, "worker not woken; its timer drain takes these orders",
			"function", w.function, "orders", len(b.ids), "orderIds", b.ids, "reason", err.Error())
	}
}

func (w *Waker) invoke(ctx context.Context, b *batch) error {
	// b is closed to new orders: it is read without the lock.
	payload, err := json.Marshal(Payload{Type: Type, Orders: b.orders})
	if err != nil {
		return err
	}
	id, err := w.inv.InvokeAsync(ctx, w.function, payload)
	if err == nil {
		w.log.DebugContext(ctx, "worker woken", "function", w.function, "orders", len(b.ids), "fcRequestId", id)
	}
	return err
}

// WakerStats counts what a Waker did.
type WakerStats struct {
	Invocations int64 // wake-ups handed over or failed
	Orders      int64 // orders they carried
	Failures    int64 // wake-ups that failed
}

// Stats returns the Waker's counters.
func (w *Waker) Stats() WakerStats {
	return WakerStats{Invocations: w.invocations.Load(), Orders: w.orders.Load(), Failures: w.failures.Load()}
}
