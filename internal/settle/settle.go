// Package settle settles attempts in doubt by themselves, from the cloud's
// NumberManagementReport messages, so that a buy whose answer was lost (a
// cut connection, a killed worker) needs no operator when the cloud says
// what it sold.
//
// An attempt in doubt is settled with exactly the operator's rules: the
// reports of its window are read back from stream XNUM_REPORTS and handed
// to reconcile.FromReports, which takes the one number created in the
// order's pool within the attempt's window, not deleted since, held by no
// order and not what another open attempt may have bought, confirmed by
// QuerySecretNoDetail — and refuses none or several. A settlement is
// recorded with its evidence, by "reports", and the order is published
// again for the workers, which buy the rest or end it.
//
// Nothing is concluded from a report's absence (reports may be late or
// lost): an attempt not settled within the wait after its answer was due
// stays in doubt, and the reason is recorded in the ledger
// (ledger.Order.Unsettled) for the operator.
//
// Run does it in a long-lived process, woken by each order.in_doubt event
// and each report, and every few seconds while an attempt waits (the
// evidence rules refuse a number while another attempt that may have
// bought it is still in flight); Pass does it once, for FC's timer drain and
// report invocations.
package settle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// By is who an automatic settlement is recorded as settled by.
const By = "reports"

// DefaultWait is how long after an attempt's answer was due its report is
// waited for before the attempt is left to an operator. MNS delivers in
// seconds: a report this late is more likely lost than late, and an
// operator can still settle from it (xnum orders reconcile --reports).
const DefaultWait = 10 * time.Minute

// Settler settles attempts in doubt from the reports. Build it with New.
type Settler struct {
	ledger  *ledger.Ledger
	rec     *reconcile.Reconciler
	reports reports.Stream
	wait    time.Duration
	every   time.Duration
	rescan  time.Duration
	log     *slog.Logger
	now     func() time.Time
	stats   counters
}

// Option configures a Settler.
type Option func(*Settler)

// WithWait sets how long after an attempt's answer was due its report is
// waited for (default DefaultWait).
func WithWait(d time.Duration) Option { return func(s *Settler) { s.wait = d } }

// WithEvery sets how often Run looks again at the attempts it waits on
// (default 5s), and how often it lists every order in doubt afresh
// (default 1m: the events it is woken by may be missed while it is down).
func WithEvery(pass, rescan time.Duration) Option {
	return func(s *Settler) { s.every, s.rescan = pass, rescan }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Settler) { s.log = l } }

// WithClock replaces time.Now for the wait; give the ledger and the
// reconciler the same clock.
func WithClock(now func() time.Time) Option { return func(s *Settler) { s.now = now } }

// New returns a Settler over the ledger that settles with rec (whose
// redriver publishes settled orders again) from the reports in stream.
func New(l *ledger.Ledger, rec *reconcile.Reconciler, stream reports.Stream, opts ...Option) (*Settler, error) {
	s := &Settler{ledger: l, rec: rec, reports: stream, wait: DefaultWait, every: 5 * time.Second, rescan: time.Minute,
		log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	switch {
	case l == nil || rec == nil || stream == nil:
		return nil, errors.New("settle: ledger, reconciler and reports stream are required")
	case s.wait <= 0 || s.every <= 0 || s.rescan <= 0:
		return nil, errors.New("settle: the wait and the intervals must be positive")
	}
	return s, nil
}

// Stats counts what a Settler did since it was made: the seam for metrics.
type Stats struct {
	Passes  int64 // passes over the attempts in doubt
	Settled int64 // attempts settled from the reports (by "reports")
	Left    int64 // attempts left to an operator after the wait, with the reason
}

type counters struct{ passes, settled, left atomic.Int64 }

// Stats returns the Settler's counters.
func (s *Settler) Stats() Stats {
	return Stats{Passes: s.stats.passes.Load(), Settled: s.stats.settled.Load(), Left: s.stats.left.Load()}
}

// PassStats tells what one pass did.
type PassStats struct {
	Open    int // attempts in doubt not yet left to an operator
	Settled int
	Left    int
	Waiting int // still waiting for evidence, or for a provider or NATS to answer
}

// Pass looks once at every order in doubt.
func (s *Settler) Pass(ctx context.Context) (PassStats, error) {
	orders, err := s.ledger.List(ctx, ledger.StatusInDoubt)
	if err != nil {
		return PassStats{}, err
	}
	st, _, err := s.settle(ctx, orders)
	return st, err
}

// outcome of one order in a pass.
type outcome int

const (
	waiting outcome = iota // look again later
	done                   // settled, left to an operator, or no longer in doubt
)

// settle looks at orders and tells, by id, which to look at again.
func (s *Settler) settle(ctx context.Context, orders []*ledger.Order) (PassStats, map[string]outcome, error) {
	var st PassStats
	out := map[string]outcome{}
	var open []*ledger.Order
	from := time.Time{}
	for _, o := range orders {
		if !inDoubt(o) {
			out[o.OrderID] = done
			continue
		}
		open = append(open, o)
		if start := o.Attempt.StartedAt.Add(-reports.ReadBack); from.IsZero() || start.Before(from) {
			from = start
		}
	}
	if st.Open = len(open); len(open) == 0 {
		return st, out, nil
	}
	s.stats.passes.Add(1)
	reps, skipped, err := reports.Since(ctx, s.reports, from)
	if err != nil {
		st.Waiting = len(open)
		for _, o := range open {
			out[o.OrderID] = waiting
		}
		return st, out, err
	}
	if skipped > 0 {
		s.log.WarnContext(ctx, "messages on the reports subject that are not NumberManagementReports were skipped", "skipped", skipped)
	}
	if reps, err = s.unheld(ctx, reps); err != nil {
		st.Waiting = len(open)
		for _, o := range open {
			out[o.OrderID] = waiting
		}
		return st, out, err
	}
	for _, o := range open {
		r := s.one(ctx, o, reps)
		out[o.OrderID] = r.outcome
		switch {
		case r.settled:
			st.Settled++
		case r.left:
			st.Left++
		case r.outcome == waiting:
			st.Waiting++
		}
	}
	return st, out, nil
}

// inDoubt tells an order with an attempt in doubt that is not yet left to
// an operator.
func inDoubt(o *ledger.Order) bool {
	return o.Status == ledger.StatusInDoubt && o.Attempt != nil &&
		(o.Unsettled == nil || o.Unsettled.Attempt != o.Attempt.Seq)
}

// unheld drops the reports of numbers an order holds: the rules refuse
// them anyway (a number is held for good), and each would cost a
// QuerySecretNoDetail call per attempt per pass in a busy pool.
func (s *Settler) unheld(ctx context.Context, reps []reconcile.Report) ([]reconcile.Report, error) {
	if len(reps) == 0 {
		return reps, nil
	}
	all, err := s.ledger.List(ctx)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, o := range all {
		for _, n := range o.Numbers {
			held[n.SecretNo] = true
		}
		for _, n := range o.Excess {
			held[n.SecretNo] = true
		}
	}
	out := reps[:0:0]
	for _, r := range reps {
		if !held[r.SecretNo] {
			out = append(out, r)
		}
	}
	return out, nil
}

type result struct {
	outcome       outcome
	settled, left bool
}

// one tries to settle the attempt in doubt of o from reps.
func (s *Settler) one(ctx context.Context, o *ledger.Order, reps []reconcile.Report) result {
	a := o.Attempt
	log := s.log.With("orderId", o.OrderID, "attempt", a.Seq)
	settled, err := s.rec.FromReports(ctx, o.OrderID, reps, By)
	if settled != nil {
		s.stats.settled.Add(1)
		st := settled.Settlements[len(settled.Settlements)-1]
		log.InfoContext(ctx, "attempt in doubt settled from the cloud's reports", "secretNo", st.SecretNo, "evidence", st.Evidence)
		if err != nil {
			log.WarnContext(ctx, "settled order not yet published again; the workers' sweep will", "error", err.Error())
		}
		return result{outcome: done, settled: true}
	}
	if moved(err) {
		return result{outcome: done}
	}
	if !refused(err) {
		log.WarnContext(ctx, "settling from the reports failed; trying again", "error", err.Error())
		return result{outcome: waiting}
	}
	due := a.AnsweredBy().Add(s.wait)
	if s.now().Before(due) {
		log.DebugContext(ctx, "attempt in doubt waits for its report", "until", due, "reason", err.Error())
		return result{outcome: waiting}
	}
	reason := fmt.Sprintf("the cloud's number reports did not settle attempt %d within %v after its answer was due (until %s): %v; left to an operator",
		a.Seq, s.wait, due.UTC().Format(time.RFC3339), err)
	if _, lerr := s.ledger.LeaveUnsettled(ctx, o, reason); lerr != nil {
		if moved(lerr) {
			return result{outcome: done}
		}
		log.WarnContext(ctx, "could not record why the attempt is left to an operator; trying again", "error", lerr.Error())
		return result{outcome: waiting}
	}
	s.stats.left.Add(1)
	log.WarnContext(ctx, "attempt in doubt left to an operator", "reason", reason)
	return result{outcome: done, left: true}
}

// moved tells errors that say the order is no longer what was read: not in
// doubt any more (a late answer or an operator settled it), or changed.
func moved(err error) bool {
	var se *ledger.StateError
	return errors.As(err, &se) || errors.Is(err, ledger.ErrStale) || errors.Is(err, ledger.ErrNotFound)
}

// refused tells the evidence's refusals — no fitting report, several, one
// the rules refuse — from failures to ask (NATS, the provider), which are
// tried again however long the wait.
func refused(err error) bool {
	switch provider.KindOf(err) {
	case provider.ErrNotFound, provider.ErrConflict, provider.ErrInvalidParameter:
		return true
	}
	return false
}
