package settle

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
)

// Run settles attempts in doubt until ctx ends, then returns nil. It keeps
// the orders in doubt it knows of (every one at start and every rescan,
// and each order.in_doubt event as it is published) and looks at them when
// a report arrives, when one goes in doubt, and every pass interval while
// any waits. It is woken through ordered consumers of its own, which leave
// nothing behind; while NATS is away it keeps to its intervals.
func (s *Settler) Run(ctx context.Context, q *queue.Queue) error {
	r := &runner{s: s, q: q, kick: make(chan struct{}, 1), known: map[string]bool{}}
	defer r.unsubscribe()
	r.rescanNow(ctx)
	pass := time.NewTicker(s.every)
	defer pass.Stop()
	rescan := time.NewTicker(s.rescan)
	defer rescan.Stop()
	s.log.InfoContext(ctx, "settling attempts in doubt from the cloud's reports", "wait", s.wait.String())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rescan.C:
			r.rescanNow(ctx)
		case <-pass.C:
			r.pass(ctx)
		case <-r.kick:
			r.pass(ctx)
		}
	}
}

// runner is one Run's state.
type runner struct {
	s    *Settler
	q    *queue.Queue
	kick chan struct{}
	subs []jetstream.ConsumeContext

	mu    sync.Mutex
	known map[string]bool // orders in doubt to look at
}

func (r *runner) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *runner) add(id string) {
	r.mu.Lock()
	r.known[id] = true
	r.mu.Unlock()
}

// rescanNow lists the orders in doubt afresh, subscribes if it is not, and
// looks at them.
func (r *runner) rescanNow(ctx context.Context) {
	if r.subs == nil {
		r.subscribe(ctx)
	}
	orders, err := r.s.ledger.List(ctx, ledger.StatusInDoubt)
	if err != nil {
		r.s.log.WarnContext(ctx, "listing the orders in doubt failed", "error", err.Error())
		return
	}
	for _, o := range orders {
		if inDoubt(o) {
			r.add(o.OrderID)
		}
	}
	r.pass(ctx)
}

// pass looks at the known orders and forgets those it is done with.
func (r *runner) pass(ctx context.Context) {
	r.mu.Lock()
	ids := make([]string, 0, len(r.known))
	for id := range r.known {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	orders := ordersOf(ctx, r, ids)
	_, out, err := r.s.settle(ctx, orders)
	if err != nil {
		r.s.log.WarnContext(ctx, "settling from the reports failed; trying again", "error", err.Error())
	}
	r.mu.Lock()
	for id, o := range out {
		if o == done {
			delete(r.known, id)
		}
	}
	r.mu.Unlock()
}

// ordersOf reads the known orders; one that cannot be read now is looked at
// next time, one that is gone is forgotten.
func ordersOf(ctx context.Context, r *runner, ids []string) []*ledger.Order {
	var out []*ledger.Order
	for _, id := range ids {
		o, err := r.s.ledger.Get(ctx, id)
		if err != nil {
			if moved(err) {
				r.mu.Lock()
				delete(r.known, id)
				r.mu.Unlock()
			}
			continue
		}
		out = append(out, o)
	}
	return out
}

// subscribe starts the wake-ups: each order.in_doubt event (its order is
// added) and each report. A failure is logged; the next rescan tries again.
func (r *runner) subscribe(ctx context.Context) {
	inDoubt, err := r.q.JS.OrderedConsumer(ctx, r.q.Config.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectOrderInDoubt}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	var reps jetstream.Consumer
	if err == nil {
		reps, err = r.q.Reports.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	}
	var subs []jetstream.ConsumeContext
	if err == nil {
		var c jetstream.ConsumeContext
		if c, err = inDoubt.Consume(func(m jetstream.Msg) {
			var ev events.Event
			var d events.OrderInDoubt
			if json.Unmarshal(m.Data(), &ev) == nil && json.Unmarshal(ev.Data, &d) == nil && d.OrderID != "" {
				r.add(d.OrderID)
				r.wake()
			}
		}); err == nil {
			subs = append(subs, c)
			if c, err = reps.Consume(func(jetstream.Msg) { r.wake() }); err == nil {
				subs = append(subs, c)
			}
		}
	}
	if err != nil {
		for _, c := range subs {
			c.Stop()
		}
		r.s.log.WarnContext(ctx, "not woken by reports and in-doubt events until the next rescan", "error", queue.Unavailable("subscribe", err).Error())
		return
	}
	r.subs = subs
}

func (r *runner) unsubscribe() {
	for _, c := range r.subs {
		c.Stop()
	}
}
