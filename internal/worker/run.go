package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// pool runs functions on at most n goroutines at once.
type pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

func newPool(n int) *pool { return &pool{sem: make(chan struct{}, n)} }

// Go runs f once a goroutine is free.
func (p *pool) Go(f func()) {
	p.sem <- struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		f()
	}()
}

// Wait waits for every f to return.
func (p *pool) Wait() { p.wg.Wait() }

// Run consumes q's order.requested consumer and its max-deliveries
// advisories until ctx ends, processing up to WithConcurrency orders at
// once, and sweeps the ledger for orders nothing drives (WithSweep). When
// ctx ends it stops pulling and waits for the orders in hand, which stop at
// their next safe point (a buy under way is finished and recorded first),
// then returns nil.
func (w *Worker) Run(ctx context.Context, q *queue.Queue) error {
	maxDeliver := q.Config.MaxDeliver
	work := newPool(w.concurrency)
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		w.log.DebugContext(ctx, "consumer", "error", err.Error())
	})
	// A client buffer no larger than the pool: buffered messages age
	// towards their ack wait without anyone working on them.
	orders, err := q.Consumer.Consume(func(m jetstream.Msg) {
		work.Go(func() { w.handleMsg(ctx, m, maxDeliver) })
	}, jetstream.PullMaxMessages(w.concurrency), jetstream.PullExpiry(w.pullExpiry), onErr)
	if err != nil {
		return queue.Unavailable("consume orders", err)
	}
	advisories, err := q.Advisories.Consume(func(m jetstream.Msg) {
		work.Go(func() { w.handleAdvisory(ctx, q.Stream, m) })
	}, jetstream.PullMaxMessages(1), jetstream.PullExpiry(w.pullExpiry), onErr)
	if err != nil {
		orders.Stop()
		return queue.Unavailable("consume advisories", err)
	}
	w.log.InfoContext(ctx, "worker consuming", "stream", q.Config.Stream, "consumer", q.Config.Consumer, "concurrency", w.concurrency)
	sweeper := w.redriver(redrive.WithFloor(q.Consumer))
	tick := time.NewTicker(w.sweepEvery)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			w.sweep(ctx, sweeper)
		}
	}
	orders.Stop()
	advisories.Stop()
	// A message handed over just before Stop may still be on its way into
	// the pool (a pool's Go during its Wait is a race); once the consumers
	// are closed none can be.
	for _, c := range []jetstream.ConsumeContext{orders, advisories} {
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
		}
	}
	work.Wait()
	w.log.InfoContext(ctx, "worker stopped")
	return nil
}

// sweep publishes again the orders nothing drives (internal/redrive).
func (w *Worker) sweep(ctx context.Context, r *redrive.Redriver) {
	st, err := r.Sweep(ctx)
	w.stats.redriven.Add(int64(st.Redriven))
	w.obs.Redriven(ctx, st.Redriven)
	if err != nil {
		w.log.WarnContext(ctx, "sweep", "error", err.Error(), "redriven", st.Redriven)
	}
}

// ackTimeout bounds the wait for the server's answer to an ack.
const ackTimeout = 3 * time.Second

// handleMsg processes one delivery and acks, naks or terminates it.
func (w *Worker) handleMsg(ctx context.Context, m jetstream.Msg, maxDeliver int) {
	d := delivery{progress: func() { _ = m.InProgress() }}
	if md, err := m.Metadata(); err == nil {
		d.seq = md.Sequence.Stream
		d.last = maxDeliver > 0 && int(md.NumDelivered) >= maxDeliver
	}
	w.reply(ctx, m, w.process(ctx, m.Data(), d))
}

// reply tells the server what became of m.
func (w *Worker) reply(ctx context.Context, m jetstream.Msg, r result) {
	var err error
	switch r.verdict {
	case vAck:
		// The server does not answer an ack of a delivery it no longer
		// tracks (one made before it restarted); a lost ack only brings a
		// replay, so do not wait long for the answer.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		err = m.DoubleAck(actx)
		cancel()
	case vRetry:
		err = m.NakWithDelay(r.delay)
	case vTerm:
		err = m.TermWithReason(r.err.Error())
	case vAbort:
		return // as a crash would: the message comes back after its ack wait
	}
	if err != nil {
		// The message comes back; the ledger makes that harmless.
		w.log.DebugContext(ctx, "ack not delivered", "error", err.Error())
	}
}

// handleAdvisory ends the order of a message that ran out of deliveries
// without being acked — its last worker crashed or gave it back — so it does
// not stay processing forever.
func (w *Worker) handleAdvisory(ctx context.Context, stream jetstream.Stream, m jetstream.Msg) {
	var adv queue.MaxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.StreamSeq == 0 {
		w.log.WarnContext(ctx, "max-deliveries advisory not understood", "body", string(m.Data()))
		_ = m.Term()
		return
	}
	w.reply(ctx, m, w.endDelivered(ctx, stream, adv))
}

func (w *Worker) endDelivered(ctx context.Context, stream jetstream.Stream, adv queue.MaxDeliveriesAdvisory) result {
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		w.log.WarnContext(ctx, "message of a max-deliveries advisory is gone from the stream", "streamSeq", adv.StreamSeq)
		return ack()
	}
	if err != nil {
		return w.retryAfter(w.nakDelay, queue.Unavailable("get message", err))
	}
	w.log.InfoContext(ctx, "message ran out of deliveries", "streamSeq", adv.StreamSeq, "deliveries", adv.Deliveries)
	return w.process(ctx, raw.Data, delivery{seq: adv.StreamSeq, last: true, endNow: true})
}

// DrainStats tells what a Drain did.
type DrainStats struct {
	Messages   int // order messages processed
	Advisories int // max-deliveries advisories processed
	Redriven   int // orders nothing drove, published again
}

// Drain processes what waits in q — max-deliveries advisories first, then
// up to limit order messages — sweeps the ledger once for orders nothing
// drives, and returns when the queue is empty, limit is reached, or too
// little time is left before ctx's deadline to start another buy. It suits a
// timer-triggered invocation that must end within its timeout. Messages it
// pulled but could not finish are given back.
func (w *Worker) Drain(ctx context.Context, q *queue.Queue, limit int) (DrainStats, error) {
	var (
		st DrainStats
		mu sync.Mutex
	)
	count := func(n *int) {
		mu.Lock()
		*n++
		mu.Unlock()
	}
	work := newPool(w.concurrency)
	defer work.Wait()
	fetchWait := func() time.Duration {
		wait := time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/4)
		}
		return max(wait, 10*time.Millisecond)
	}

	advs, err := q.Advisories.Fetch(limit, jetstream.FetchMaxWait(fetchWait()))
	if err != nil {
		return st, queue.Unavailable("fetch advisories", err)
	}
	for m := range advs.Messages() {
		work.Go(func() {
			w.handleAdvisory(ctx, q.Stream, m)
			count(&st.Advisories)
		})
	}

	// Sweep first: what it publishes is drained below in this same call.
	sweep, err := w.redriver(redrive.WithFloor(q.Consumer), redrive.WithLimit(limit)).Sweep(ctx)
	st.Redriven = sweep.Redriven
	w.stats.redriven.Add(int64(sweep.Redriven))
	w.obs.Redriven(ctx, sweep.Redriven)
	if err != nil {
		w.log.WarnContext(ctx, "sweep", "error", err.Error())
	}

	maxDeliver := q.Config.MaxDeliver
	for n := 0; n < limit; {
		if err := w.mayStartBuy(ctx); err != nil {
			break
		}
		batch, err := q.Consumer.Fetch(min(w.concurrency, limit-n), jetstream.FetchMaxWait(fetchWait()))
		if err != nil {
			return st, queue.Unavailable("fetch orders", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			n++
			if w.mayStartBuy(ctx) != nil {
				_ = m.Nak() // no time for it: let another invocation take it now
				continue
			}
			work.Go(func() {
				w.handleMsg(ctx, m, maxDeliver)
				count(&st.Messages)
			})
		}
		if got == 0 {
			break
		}
	}
	work.Wait()
	return st, nil
}

// HandleOrder processes one order.requested message of an event invocation
// (FC event, EventBridge, Lambda SQS): our CloudEvent or a bare order. It
// goes through the same ledger and publishes the same events as the queue
// consumer; the ledger counts the order's deliveries (WithEventDeliveries).
// There is no JetStream message to ack: a nil error means the message is
// done (the order ended, stopped in doubt, or the message was refused with a
// logged reason); an error matching ErrRetryLater means the trigger should
// deliver it again later.
func (w *Worker) HandleOrder(ctx context.Context, body []byte) error {
	return w.outcome(w.process(ctx, body, delivery{event: true}))
}

// HandleOrders is HandleOrder for the messages of one batch, up to
// WithConcurrency at once, with one error per message. A batch may hold
// one order twice (an SQS redelivery beside the original): it is handled
// once and both messages get its answer, where running both at once would
// make one wait on the other's claim.
func (w *Worker) HandleOrders(ctx context.Context, bodies [][]byte) []error {
	errs := make([]error, len(bodies))
	first := map[string]int{}
	dupOf := map[int]int{}
	work := newPool(w.concurrency)
	for i, b := range bodies {
		if id, ok := events.PeekOrderID(b); ok {
			if j, seen := first[id]; seen {
				dupOf[i] = j
				continue
			}
			first[id] = i
		}
		work.Go(func() { errs[i] = w.HandleOrder(ctx, b) })
	}
	work.Wait()
	for i, j := range dupOf {
		errs[i] = errs[j]
	}
	return errs
}

// ErrRetryLater is matched by every error HandleOrder returns for a message
// that should be delivered again later. It is of kind provider.ErrUnavailable.
var ErrRetryLater error = retryLater{}

type retryLater struct{}

func (retryLater) Error() string {
	return "worker: the order cannot be processed now; deliver it again later"
}
func (retryLater) Unwrap() error { return provider.ErrUnavailable }

func (w *Worker) outcome(r result) error {
	switch r.verdict {
	case vAck, vTerm:
		return nil
	case vAbort:
		return r.err
	}
	return &retryError{cause: r.err, delay: r.delay}
}

// retryError asks the trigger to deliver the message again.
type retryError struct {
	cause error
	delay time.Duration
}

func (e *retryError) Error() string {
	return fmt.Sprintf("worker: retry in %v: %v", e.delay.Round(time.Millisecond), e.cause)
}

// Unwrap puts the error in the taxonomy as provider.ErrUnavailable (its
// kind comes first, before the cause's) and makes it match ErrRetryLater.
func (e *retryError) Unwrap() []error {
	return []error{&provider.Error{Kind: provider.ErrUnavailable, Message: "deliver the order again later", Err: ErrRetryLater}, e.cause}
}
