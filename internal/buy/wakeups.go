package buy

import (
	"context"
	"errors"

	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/wakeup"
)

// withWakeups lets next handle the intake's wake-up invocations (package
// wakeup): each is taken apart into the orders it carries, handled as as
// many order messages (worker.HandleOrders), and answered with the join of
// their errors, so FC retries a wake-up whose orders asked to be delivered
// again. Every other message reaches next as it came.
func withWakeups(next trigger.EventHandler) trigger.EventHandler {
	return trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
		var flat []trigger.Message
		var from []int // flat[i] came from msgs[from[i]]
		woken := false
		for i, m := range msgs {
			p, ok := wakeupOf(m)
			if !ok {
				flat, from = append(flat, m), append(from, i)
				continue
			}
			woken = true
			for _, o := range p.Orders {
				flat = append(flat, trigger.Message{ID: m.ID, Source: trigger.SourceDirect, Body: o, Attributes: m.Attributes})
				from = append(from, i)
			}
		}
		if !woken {
			return next.HandleEvents(ctx, msgs)
		}
		out := make([]error, len(msgs))
		if len(flat) == 0 {
			return out
		}
		res := next.HandleEvents(ctx, flat)
		if len(res) != len(flat) { // which were done is unknown
			for i := range out {
				out[i] = errors.New("buy: the worker answered a different number of results than orders")
			}
			return out
		}
		errs := make([][]error, len(msgs))
		for i, err := range res {
			errs[from[i]] = append(errs[from[i]], err)
		}
		for i, es := range errs {
			out[i] = errors.Join(es...)
		}
		return out
	})
}

func wakeupOf(m trigger.Message) (wakeup.Payload, bool) {
	if m.Source != trigger.SourceDirect {
		return wakeup.Payload{}, false
	}
	return wakeup.Decode(m.Body)
}
