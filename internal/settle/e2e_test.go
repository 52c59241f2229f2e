package settle_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// slack is the reconcilers' slack in these runs: the emulator's clock is
// ours, so one second (its times' resolution) is enough.
const slack = time.Second

// killer kills worker processes at random points of their work. Kills
// mid-buy (after the cloud sold, before the answer reached the ledger) are
// spaced more than the slack apart: two attempts lost within the slack of
// each other may each have bought either number, which the evidence rules
// rightly leave to an operator (TestLeftToAnOperator).
type killer struct {
	mu        sync.Mutex
	rng       *rand.Rand
	max       int // kills in all
	kills     int
	midBuy    int
	lastMid   time.Time
	spacing   time.Duration
	atBuy     float64 // chance of a kill right after a buy
	elsewhere float64 // chance at the other points
}

// hook is the fault hook of one process: once killed, the process is dead
// at every point, and die is called once.
func (k *killer) hook(die func()) worker.Hook {
	var dead atomic.Bool
	return func(_ context.Context, p worker.Point, _ string) error {
		if dead.Load() {
			return buytest.ErrCrash
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.kills >= k.max {
			return nil
		}
		switch {
		case p == worker.AfterBuy && time.Since(k.lastMid) > k.spacing && k.rng.Float64() < k.atBuy:
			k.midBuy++
			k.lastMid = time.Now()
		case p != worker.AfterBuy && k.rng.Float64() < k.elsewhere:
		default:
			return nil
		}
		k.kills++
		dead.Store(true)
		go die()
		return buytest.ErrCrash
	}
}

// Worker processes — each a buy worker and a settler — are killed at random
// mid-buy and elsewhere and replaced, while the emulator's reports flow to
// JetStream: every order completes with no operator, every number sold is
// in exactly one order, and every attempt lost mid-buy was settled by the
// reports.
func TestKilledWorkersSettleFromReports(t *testing.T) {
	orders, maxKills := 24, 12
	if buytest.Soak() {
		orders, maxKills = 120, 60
	}
	e := buytest.New(t, buytest.WithReportFeed(200*time.Millisecond), buytest.WithNumbers(buytest.Hangzhou(4*orders)...))
	k := &killer{rng: rand.New(rand.NewPCG(13, 1)), max: maxKills, spacing: 3 * slack / 2, atBuy: 0.5, elsewhere: 0.05}

	// A process: a worker and a settler that die together.
	var wg sync.WaitGroup
	ctx, stopAll := context.WithCancel(context.Background())
	var gen atomic.Int64
	var start func(slot int)
	start = func(slot int) {
		pctx, kill := context.WithCancel(ctx)
		name := "p" + string(rune('a'+slot)) + "-" + string(rune('0'+gen.Add(1)%10))
		var once sync.Once
		die := func() {
			once.Do(func() {
				kill()
				if ctx.Err() == nil {
					start(slot) // its replacement
				}
			})
		}
		w := e.Worker(name, worker.WithFaultHook(k.hook(die)), worker.WithConcurrency(1), worker.WithBuyQPS(8),
			worker.WithLease(time.Second), worker.WithBuyTimeout(time.Second), worker.WithSweep(300*time.Millisecond, time.Second))
		s, err := settle.New(e.Ledger, e.Reconciler(reconcile.WithSlack(slack)), e.Queue.Reports, settle.WithWait(time.Minute),
			settle.WithEvery(100*time.Millisecond, time.Second),
			settle.WithLogger(slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("settler", name)))
		if err != nil {
			t.Error(err)
			return
		}
		wg.Add(2)
		go func() { defer wg.Done(); _ = w.Run(pctx, e.Queue) }()
		go func() { defer wg.Done(); _ = s.Run(pctx, e.Queue) }()
	}
	start(0)
	start(1)
	t.Cleanup(func() { stopAll(); wg.Wait() })

	ids := buytest.IDs("chaos", orders)
	for _, id := range ids {
		e.PublishRaw(buytest.Body(t, buytest.Order(id, 2)), id)
	}
	done := e.WaitCompleted(ids, 2*time.Minute)
	stopAll()
	wg.Wait()

	sold, inLedger, unsettled := e.Audit(done)
	byReports := 0
	for id, o := range done {
		for _, s := range o.Settlements {
			switch s.By {
			case settle.By:
				byReports++
			case "worker": // its own late answer
			default:
				t.Errorf("order %s settled by %q: an operator's hand", id, s.By)
			}
		}
	}
	k.mu.Lock()
	kills, midBuy := k.kills, k.midBuy
	k.mu.Unlock()
	t.Logf("%d orders of 2: %d kills (%d mid-buy), %d attempts settled from the reports; %d sold, %d in the ledger, %d in doubt",
		orders, kills, midBuy, byReports, sold, inLedger, unsettled)
	if midBuy == 0 {
		t.Fatal("no process was killed mid-buy: the run proves nothing")
	}
	if byReports != midBuy || sold != 2*orders || inLedger != sold {
		t.Fatalf("%d kills mid-buy, %d settled from reports; %d sold, %d in the ledger, %d wanted", midBuy, byReports, sold, inLedger, 2*orders)
	}
}

// An attempt whose report never comes, and two attempts whose reports
// cannot be told apart, stay in doubt: after the wait each says why, and
// nothing is settled.
func TestLeftToAnOperator(t *testing.T) {
	for _, tc := range []struct {
		name   string
		feed   bool
		orders []string
		why    string
	}{
		{"no report comes", false, []string{"o"}, "no report shows a number created"},
		{"two attempts lost at once", true, []string{"o-a", "o-b"}, "could as well be what attempt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []buytest.Option
			if tc.feed {
				opts = append(opts, buytest.WithReportFeed(0))
			}
			e := buytest.New(t, opts...)
			e.Run(e.Worker("w", worker.WithBuyTimeout(time.Second)))
			s := e.Settler(settle.WithWait(200 * time.Millisecond))
			e.RunSettler(s)
			e.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
			for _, id := range tc.orders {
				e.PublishRaw(buytest.Body(t, buytest.Order(id, 1)), id)
			}
			left := e.WaitFor(tc.orders, 20*time.Second, func(o *ledger.Order) bool { return o.Unsettled != nil })
			for id, o := range left {
				if o.Status != ledger.StatusInDoubt || len(o.Settlements) != 0 || len(o.Numbers) != 0 ||
					!strings.Contains(o.Unsettled.Reason, tc.why) || !strings.Contains(o.Unsettled.Reason, "left to an operator") {
					t.Fatalf("%s: %s, settlements %+v, left because %q", id, o.Status, o.Settlements, o.Unsettled.Reason)
				}
			}
			if st := s.Stats(); st.Settled != 0 || st.Left != int64(len(tc.orders)) {
				t.Fatalf("stats %+v", st)
			}
			if _, _, unsettled := e.Audit(left); unsettled != len(tc.orders) {
				t.Fatalf("%d in doubt", unsettled)
			}
		})
	}
}
