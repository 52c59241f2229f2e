package worker_test

// The tests of this file attack the money path's assumptions: each one
// reproduces a double purchase or an order left without a driver that an
// outside review found, and says what must happen instead.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// A cloud that sold the number and then answered an error has bought: the
// order goes in doubt after one call and is never bought again, whatever the
// code and however often the message comes back.
func TestErrorAfterSellingIsNeverBoughtAgain(t *testing.T) {
	for _, code := range []string{"InternalError", "ServiceUnavailable", "UnknownError", "ServiceTimeout", "isp.SYSTEM_ERROR", "isp.UNKNOWN_ERR_CODE"} {
		t.Run(code, func(t *testing.T) {
			e := buytest.New(t, buytest.WithQueue(queue.WithMaxDeliver(3)))
			e.Faults.Set("BuySecretNo", fault.Fault{ErrorAfterCode: code})
			e.Run(e.Worker("w"))
			e.PublishRaw(buytest.Body(t, buytest.Order("ea-1", 1)), "ea-1")
			o := e.WaitStopped([]string{"ea-1"}, 20*time.Second)["ea-1"]
			if o.Status != ledger.StatusInDoubt || o.Error.Code != string(provider.ErrInDoubt) {
				t.Fatalf("order %s %+v, want in doubt", o.Status, o.Error)
			}
			if sold, calls := len(e.Emu.Purchases()), e.Emu.Calls("BuySecretNo"); sold != 1 || calls != 1 {
				t.Fatalf("the emulator sold %d numbers in %d calls for an order of 1", sold, calls)
			}
			e.Audit(map[string]*ledger.Order{"ea-1": o})
		})
	}
}

// A fact another writer records on the order (here the intake's late
// "request published" mark) changes its revision under the worker; the
// worker reads it again and goes on under the claim it holds, instead of
// waiting out its own lease.
func TestFactWriteOfAnotherKeepsTheClaim(t *testing.T) {
	e := buytest.New(t, buytest.WithQueue(queue.WithMaxDeliver(3)))
	var once sync.Once
	hook := func(ctx context.Context, p worker.Point, id string) error {
		if p == worker.AfterClaim {
			once.Do(func() {
				o, err := e.Ledger.Get(ctx, id)
				if err == nil {
					_, err = e.Ledger.MarkPublished(ctx, o, 0)
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	}
	w := e.Worker("w", worker.WithLease(45*time.Second), worker.WithFaultHook(hook))
	e.Run(w)
	e.PublishRaw(buytest.Body(t, buytest.Order("fw-1", 2)), "fw-1")
	o := e.WaitStopped([]string{"fw-1"}, 20*time.Second)["fw-1"]
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 2 {
		t.Fatalf("order %s with %d numbers", o.Status, len(o.Numbers))
	}
	if st := w.Stats(); st.Retried != 0 || st.Messages != 1 {
		t.Fatalf("the worker gave its own order back: %+v", st)
	}
	e.Audit(map[string]*ledger.Order{"fw-1": o})
}

// An order settled after its message was acked (it was in doubt) is driven
// again: the settlement that lands with nobody to continue the order (the
// operator's process died right after its write) is found by the sweeper
// and re-driven through JetStream.
func TestSettledOrderIsDrivenAgain(t *testing.T) {
	e := buytest.New(t)
	e.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	e.Run(e.Worker("w", worker.WithSweep(100*time.Millisecond, 300*time.Millisecond)))
	e.PublishRaw(buytest.Body(t, buytest.Order("st-1", 2)), "st-1")
	o := e.WaitStopped([]string{"st-1"}, 20*time.Second)["st-1"]
	if o.Status != ledger.StatusInDoubt {
		t.Fatalf("order %s, want in doubt", o.Status)
	}
	e.Faults.Set("BuySecretNo", fault.Fault{})
	sold := e.Emu.Purchases()[0].SecretNo
	if _, err := e.Ledger.Settle(buytest.Ctx(t), "st-1", ledger.Settlement{Outcome: ledger.OutcomeBought, SecretNo: sold,
		By: "test", Evidence: "the emulator's sale"}); err != nil {
		t.Fatal(err)
	}
	o = e.WaitCompleted([]string{"st-1"}, 20*time.Second)["st-1"]
	if len(o.Numbers) != 2 || o.Numbers[0].SecretNo != sold {
		t.Fatalf("numbers %v", o.NumberList())
	}
	e.Audit(map[string]*ledger.Order{"st-1": o})
}

// A worker killed mid-buy on an event trigger that never retries leaves the
// order processing with an open attempt and no message: the sweeper gives it
// a driver, which puts it in doubt and publishes order.in_doubt.
func TestKilledMidBuyWithoutAMessageGoesInDoubt(t *testing.T) {
	e := buytest.New(t)
	hook, fired := buytest.CrashAt(worker.AfterBuy, "km-1", 1)
	crashing := e.Worker("crashing", worker.WithFaultHook(hook), worker.WithLease(200*time.Millisecond))
	if err := crashing.HandleOrder(buytest.Ctx(t), buytest.Body(t, buytest.Order("km-1", 1))); !errors.Is(err, buytest.ErrCrash) || !fired() {
		t.Fatalf("HandleOrder = %v", err)
	}
	e.Run(e.Worker("sweeping", worker.WithSweep(100*time.Millisecond, 300*time.Millisecond)))
	o := e.WaitStopped([]string{"km-1"}, 20*time.Second)["km-1"]
	if o.Status != ledger.StatusInDoubt || len(e.Books().InDoubt["km-1"]) != 1 {
		t.Fatalf("order %s, %d in-doubt events", o.Status, len(e.Books().InDoubt["km-1"]))
	}
	e.Audit(map[string]*ledger.Order{"km-1": o})
}

// An order that came through an event trigger (FC event, EventBridge, SQS)
// counts its deliveries in the ledger and ends on the last one the worker
// allows, instead of waiting for a retry the platform never sends.
func TestEventTriggerOrderEndsAfterItsDeliveries(t *testing.T) {
	e := buytest.New(t)
	e.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: dypls.ThrottlingCode})
	w := e.Worker("w", worker.WithRetry(0, time.Millisecond), worker.WithEventDeliveries(3))
	b := buytest.Body(t, buytest.Order("ev-1", 1))
	for try := 1; try <= 3; try++ {
		err := w.HandleOrder(buytest.Ctx(t), b)
		if last := try == 3; (err == nil) != last {
			t.Fatalf("delivery %d: %v", try, err)
		}
	}
	o, err := e.Ledger.Get(buytest.Ctx(t), "ev-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != ledger.StatusFailed || o.Error.Code != string(provider.ErrThrottled) || !o.EventPublished {
		t.Fatalf("order %s %+v (event published %v)", o.Status, o.Error, o.EventPublished)
	}
	if err := w.HandleOrder(buytest.Ctx(t), b); err != nil {
		t.Fatalf("a fourth delivery replays: %v", err)
	}
	e.Audit(map[string]*ledger.Order{"ev-1": o})
}

// One unreadable answer to the inventory check (a proxy's page) is not a
// reason to fail the order: the check is read-only and is asked again.
func TestUnreadableInventoryAnswerDoesNotFailTheOrder(t *testing.T) {
	e := buytest.New(t)
	e.Faults.Set("QuerySecretNoRemain", fault.Fault{GarbleRate: 1})
	w := e.Worker("w")
	b := buytest.Body(t, buytest.Order("inv-1", 1))
	if err := w.HandleOrder(buytest.Ctx(t), b); !errors.Is(err, worker.ErrRetryLater) {
		t.Fatalf("HandleOrder = %v, want a later delivery", err)
	}
	if o, _ := e.Ledger.Get(buytest.Ctx(t), "inv-1"); o.Status.Stopped() {
		t.Fatalf("order %s after an unreadable answer: %+v", o.Status, o.Error)
	}
	e.Faults.Set("QuerySecretNoRemain", fault.Fault{})
	buytest.Handle(t, w, b)
	o := e.WaitStopped([]string{"inv-1"}, 10*time.Second)["inv-1"]
	if o.Status != ledger.StatusCompleted {
		t.Fatalf("order %s", o.Status)
	}
}

// heldBuyer buys through the real client but keeps the answer until let go:
// a buy whose answer comes late, after others moved the order.
type heldBuyer struct {
	provider.Purchaser
	bought chan struct{}
	letGo  chan struct{}
}

func (h heldBuyer) Buy(ctx context.Context, r provider.BuyRequest) (provider.BuyResult, error) {
	res, err := h.Purchaser.Buy(ctx, r)
	close(h.bought)
	<-h.letGo
	return res, err
}

// A number whose answer arrives after the order was settled "nothing
// bought" and completed with another number is recorded as excess, published
// as its own event, and never added past the quantity.
func TestLateNumberAfterNothingBoughtIsExcess(t *testing.T) {
	e := buytest.New(t)
	held := heldBuyer{Purchaser: e.Aliyun, bought: make(chan struct{}), letGo: make(chan struct{})}
	slow := e.WorkerBuying(held, "slow", worker.WithLease(200*time.Millisecond))
	b := buytest.Body(t, buytest.Order("late-1", 1))
	done := make(chan error, 1)
	go func() { done <- slow.HandleOrder(context.Background(), b) }()
	<-held.bought
	time.Sleep(300 * time.Millisecond) // the slow worker's lease lapses

	other := e.Worker("other")
	if err := other.HandleOrder(buytest.Ctx(t), b); err != nil {
		t.Fatal(err)
	}
	o, _ := e.Ledger.Get(buytest.Ctx(t), "late-1")
	if o.Status != ledger.StatusInDoubt {
		t.Fatalf("order %s, want in doubt", o.Status)
	}
	// An operator's wrong word: nothing was bought.
	if _, err := e.Ledger.Settle(buytest.Ctx(t), "late-1", ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "looked nowhere"}); err != nil {
		t.Fatal(err)
	}
	buytest.Handle(t, other, b)
	close(held.letGo)
	if err := <-done; err != nil {
		t.Logf("slow worker: %v", err)
	}
	buytest.Handle(t, other, b)

	o, _ = e.Ledger.Get(buytest.Ctx(t), "late-1")
	sold := e.Emu.Purchases()
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 1 || len(o.Excess) != 1 || len(sold) != 2 ||
		o.Excess[0].SecretNo != sold[0].SecretNo || o.Numbers[0].SecretNo != sold[1].SecretNo {
		t.Fatalf("order %s numbers %v excess %v; sold %v", o.Status, o.NumberList(), o.Excess, sold)
	}
	var excess []events.NumberExcess
	for _, ev := range e.StreamEvents(events.SubjectNumberExcess) {
		var d events.NumberExcess
		buytest.MustData(t, ev, &d)
		excess = append(excess, d)
	}
	if len(excess) != 1 || excess[0].SecretNo != sold[0].SecretNo || excess[0].OrderID != "late-1" {
		t.Fatalf("excess events %+v", excess)
	}
	if s, l, _ := e.Audit(map[string]*ledger.Order{"late-1": o}); s != 2 || l != 2 {
		t.Fatalf("sold %d, recorded %d", s, l)
	}
}

// slowLimiter makes every buy wait long for its turn, as a rate shared by
// many workers may.
type slowLimiter struct{ wait time.Duration }

func (l slowLimiter) Wait(ctx context.Context) error {
	select {
	case <-time.After(l.wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A buy is not started when the rate's wait has eaten the time it needs
// before the invocation's deadline: it would be cut short and in doubt.
func TestNoBuyStartedAfterALongRateWait(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w", worker.WithLimiter(slowLimiter{1500 * time.Millisecond}), worker.WithBuyTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.HandleOrder(ctx, buytest.Body(t, buytest.Order("rate-1", 1))); !errors.Is(err, worker.ErrRetryLater) {
		t.Fatalf("HandleOrder = %v, want a later delivery", err)
	}
	o, _ := e.Ledger.Get(buytest.Ctx(t), "rate-1")
	if n := e.Emu.Calls("BuySecretNo"); n != 0 || o.Attempt != nil || o.Claim != nil || o.Status != ledger.StatusAccepted {
		t.Fatalf("%d buy calls; order %s, attempt %+v, claim %+v", n, o.Status, o.Attempt, o.Claim)
	}
}
