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
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Run consumes q's order.requested consumer and its max-deliveries
// advisories until ctx ends, processing up to WithConcurrency orders at
// once. When ctx ends it stops pulling and waits for the orders in hand,
// which stop at their next safe point (a buy under way is finished and
// recorded first), then returns nil.
func (w *Worker) Run(ctx context.Context, q *queue.Queue) error {
	maxDeliver := q.Config.MaxDeliver
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	dispatch := func(handle func()) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle()
		}()
	}
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		w.log.DebugContext(ctx, "consumer", "error", err.Error())
	})
	// A client buffer no larger than the pool: buffered messages age
	// towards their ack wait without anyone working on them.
	orders, err := q.Consumer.Consume(func(m jetstream.Msg) {
		dispatch(func() { w.handleMsg(ctx, m, maxDeliver) })
	}, jetstream.PullMaxMessages(w.concurrency), jetstream.PullExpiry(w.pullExpiry), onErr)
	if err != nil {
		return queue.Unavailable("consume orders", err)
	}
	advisories, err := q.Advisories.Consume(func(m jetstream.Msg) {
		dispatch(func() { w.handleAdvisory(ctx, q.Stream, m) })
	}, jetstream.PullMaxMessages(1), jetstream.PullExpiry(w.pullExpiry), onErr)
	if err != nil {
		orders.Stop()
		return queue.Unavailable("consume advisories", err)
	}
	w.log.InfoContext(ctx, "worker consuming", "stream", q.Config.Stream, "consumer", q.Config.Consumer, "concurrency", w.concurrency)
	<-ctx.Done()
	orders.Stop()
	advisories.Stop()
	wg.Wait()
	w.log.InfoContext(ctx, "worker stopped")
	return nil
}

// ackTimeout bounds the wait for the server's answer to an ack.
const ackTimeout = 3 * time.Second

// handleMsg processes one delivery and acks, naks or terminates it.
func (w *Worker) handleMsg(ctx context.Context, m jetstream.Msg, maxDeliver int) {
	d := delivery{progress: func() { _ = m.InProgress() }}
	if md, err := m.Metadata(); err == nil && maxDeliver > 0 && int(md.NumDelivered) >= maxDeliver {
		d.last = true
	}
	w.settle(ctx, m, w.process(ctx, m.Data(), d))
}

func (w *Worker) settle(ctx context.Context, m jetstream.Msg, r result) {
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
	w.settle(ctx, m, w.endDelivered(ctx, stream, adv))
}

func (w *Worker) endDelivered(ctx context.Context, stream jetstream.Stream, adv queue.MaxDeliveriesAdvisory) result {
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		w.log.WarnContext(ctx, "message of a max-deliveries advisory is gone from the stream", "streamSeq", adv.StreamSeq)
		return done()
	}
	if err != nil {
		return w.retryAfter(w.nakDelay, queue.Unavailable("get message", err))
	}
	w.log.InfoContext(ctx, "message ran out of deliveries", "streamSeq", adv.StreamSeq, "deliveries", adv.Deliveries)
	return w.process(ctx, raw.Data, delivery{last: true, endNow: true})
}

// DrainStats tells what a Drain did.
type DrainStats struct {
	Messages   int // order messages processed
	Advisories int // max-deliveries advisories processed
}

// Drain processes what waits in q — max-deliveries advisories first, then
// up to limit order messages — and returns when the queue is empty, limit is
// reached, or too little time is left before ctx's deadline to start
// another buy. It suits a timer-triggered invocation that must end within
// its timeout. Messages it pulled but could not finish are given back.
func (w *Worker) Drain(ctx context.Context, q *queue.Queue, limit int) (DrainStats, error) {
	var st DrainStats
	var mu sync.Mutex
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(handle func()) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle()
		}()
	}
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
		run(func() {
			w.handleAdvisory(ctx, q.Stream, m)
			mu.Lock()
			st.Advisories++
			mu.Unlock()
		})
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
			run(func() {
				w.handleMsg(ctx, m, maxDeliver)
				mu.Lock()
				st.Messages++
				mu.Unlock()
			})
		}
		if got == 0 {
			break
		}
	}
	wg.Wait()
	return st, nil
}

// HandleOrder processes one order.requested message of an event invocation
// (FC event, EventBridge, Lambda SQS): our CloudEvent or a bare order. It
// goes through the same ledger and publishes the same events as the queue
// consumer. There is no JetStream message to ack: a nil error means the
// message is done (the order ended, stopped in doubt, or the message was
// refused with a logged reason); an error means the trigger should deliver it
// again later.
func (w *Worker) HandleOrder(ctx context.Context, body []byte) error {
	return w.outcome(w.process(ctx, body, delivery{}))
}

// Resume processes the order id from the ledger, as a delivery of its
// message would: after an operator settled an attempt in doubt, it buys the
// rest or ends the order. Errors are as for HandleOrder; an unknown id is
// ledger.ErrNotFound.
func (w *Worker) Resume(ctx context.Context, id string) error {
	o, err := w.ledger.Get(ctx, id)
	if err != nil {
		return err
	}
	w.stats.messages.Add(1)
	r := w.run(ctx, o, delivery{})
	if r.verdict == vAck {
		w.stats.acked.Add(1)
	}
	return w.outcome(r)
}

// ErrRetryLater is matched by every error HandleOrder returns for a message
// that should be delivered again later.
var ErrRetryLater = &provider.Error{Kind: provider.ErrUnavailable, Message: "the order cannot be processed now; deliver it again later"}

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

func (e *retryError) Unwrap() []error { return []error{ErrRetryLater, e.cause} }

// RetryDelay returns the redelivery delay the worker asked for with an error
// of HandleOrder, and whether err is such an error.
func RetryDelay(err error) (time.Duration, bool) {
	var re *retryError
	if errors.As(err, &re) {
		return re.delay, true
	}
	return 0, false
}

// HandleEvents makes Worker a trigger.EventHandler: each message is an
// order (HandleOrder), except an FC timer's, which drains the queue given
// with WithQueue (up to 100 orders within the invocation's deadline). The
// errors are per message.
func (w *Worker) HandleEvents(ctx context.Context, msgs []trigger.Message) []error {
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.concurrency)
	// A batch may hold one order twice (an SQS redelivery beside the
	// original): it is handled once and both messages get its answer, where
	// running both at once would make one wait on the other's claim.
	first := map[string]int{}
	dups := map[int]int{}
	for i, m := range msgs {
		if m.Source == trigger.SourceTimer {
			continue
		}
		if id, ok := events.PeekOrderID(m.Body); ok {
			if j, ok := first[id]; ok {
				dups[i] = j
				continue
			}
			first[id] = i
		}
	}
	for i, m := range msgs {
		if _, dup := dups[i]; dup {
			continue
		}
		if m.Source == trigger.SourceTimer {
			if w.queue == nil {
				errs[i] = &provider.Error{Kind: provider.ErrInvalidParameter, Message: "a timer invocation drains the queue, and this worker has none (WithQueue)"}
				continue
			}
			st, err := w.Drain(ctx, w.queue, 100)
			w.log.InfoContext(ctx, "drained", "messages", st.Messages, "advisories", st.Advisories)
			errs[i] = err
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = w.HandleOrder(ctx, m.Body)
		}()
	}
	wg.Wait()
	for i, j := range dups {
		errs[i] = errs[j]
	}
	return errs
}

var _ trigger.EventHandler = (*Worker)(nil)
