package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

func TestOrderCompletes(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w1")
	o := buytest.Order("ord-1", 3)
	o.Prefix = "13"
	buytest.Handle(t, w, buytest.Body(t, o))

	got := e.WaitStopped([]string{"ord-1"}, 10*time.Second)["ord-1"]
	if got.Status != ledger.StatusCompleted || len(got.Numbers) != 3 || got.Attempts != 3 || got.Claim != nil {
		t.Fatalf("order %+v", got)
	}
	for _, n := range got.Numbers {
		if !strings.HasPrefix(n.SecretNo, "13") || n.RequestID == "" || !n.Published {
			t.Errorf("number %+v", n)
		}
	}
	sold, inLedger, _ := e.Audit(map[string]*ledger.Order{"ord-1": got})
	if sold != 3 || inLedger != 3 || e.Emu.Calls("BuySecretNo") != 3 || e.Emu.Calls("QuerySecretNoRemain") != 1 {
		t.Fatalf("sold %d, ledger %d, buy calls %d, remain calls %d", sold, inLedger, e.Emu.Calls("BuySecretNo"), e.Emu.Calls("QuerySecretNoRemain"))
	}

	// The same message again replays: nothing bought, nothing published.
	before := len(e.StreamEvents(">"))
	buytest.Handle(t, w, buytest.Body(t, o))
	buytest.Handle(t, w, []byte(`{"orderId":"ord-1","poolKey":"`+buytest.Pool+`","city":"杭州","specId":2,"quantity":3,"prefix":"13"}`)) // bare form
	if e.Emu.Calls("BuySecretNo") != 3 || len(e.StreamEvents(">")) != before {
		t.Fatalf("replay bought or published: %d buys, %d events (was %d)", e.Emu.Calls("BuySecretNo"), len(e.StreamEvents(">")), before)
	}
	st := w.Stats()
	t.Logf("1 order of 3: %d buy calls, %d events; worker %+v", e.Emu.Calls("BuySecretNo"), before, st)
}

// TestDuplicateDeliveries: every order is published three times (as a
// producer re-publishing after the duplicate window would) and consumed by
// two workers at once. Every order buys exactly its quantity.
func TestDuplicateDeliveries(t *testing.T) {
	n := 1000
	if buytest.Soak() {
		n = 5000
	}
	e := buytest.New(t, buytest.WithNumbers(buytest.Hangzhou(2*n+100)...))
	// Nothing crashes here: a lease and a buy timeout far above a loaded
	// machine's slowest call keep a slow buy from going in doubt.
	slowOK := []worker.Option{worker.WithConcurrency(4), worker.WithLease(30 * time.Second), worker.WithBuyTimeout(20 * time.Second)}
	w1 := e.Worker("w1", slowOK...)
	w2 := e.Worker("w2", slowOK...)
	start := time.Now()
	e.Run(w1)
	e.Run(w2)
	orderIDs := buytest.IDs("dup", n)
	want := 0
	for i, id := range orderIDs {
		o := buytest.Order(id, 1+i%3)
		want += o.Quantity
		b := buytest.Body(t, o)
		for copy := range 3 {
			e.PublishRaw(b, fmt.Sprintf("%s-copy%d", id, copy))
		}
	}
	orders := e.WaitCompleted(orderIDs, 5*time.Minute)
	took := time.Since(start)
	for id, o := range orders {
		if o.Status != ledger.StatusCompleted {
			t.Errorf("order %s %s: %+v", id, o.Status, o.Error)
		}
	}
	sold, inLedger, _ := e.Audit(orders)
	if sold != want || inLedger != want {
		t.Fatalf("sold %d, ledger %d, want %d", sold, inLedger, want)
	}
	st := buytest.SumStats(w1, w2)
	t.Logf("%d orders x 3 deliveries, 2 workers: %d numbers wanted, %d sold, %d in the ledger, 0 double buys, 0 lost; "+
		"%d messages handled (%d acked, %d nak'ed), %d buy calls, in %v", n, want, sold, inLedger, st.Messages, st.Acked, st.Retried, st.Buys, took.Round(time.Millisecond))
}

// TestCrashAtEachFaultPoint stops a worker at each fault point of the buy
// loop and starts a new one: no number is bought twice, every bought number
// ends in the ledger and published.
func TestCrashAtEachFaultPoint(t *testing.T) {
	for _, c := range []struct {
		point worker.Point
		nth   int
	}{
		{worker.AfterClaim, 1},
		{worker.AfterBuy, 2},
		{worker.AfterRecord, 2},
		{worker.BeforeAck, 1},
	} {
		t.Run(string(c.point), func(t *testing.T) {
			e := buytest.New(t)
			const id = "crash-1"
			hook, fired := buytest.CrashAt(c.point, id, c.nth)
			a := e.Worker("a", worker.WithFaultHook(hook))
			stopA := e.Run(a)
			e.PublishRaw(buytest.Body(t, buytest.Order(id, 3)), id)
			waitFor(t, fired, 10*time.Second)
			stopA() // the crashed worker is gone; its message was neither acked nor nak'ed

			b := e.Worker("b")
			e.Run(b)
			got := e.WaitStopped([]string{id}, 30*time.Second)[id]

			if c.point == worker.AfterBuy {
				// The crash lost the answer of attempt 2: the order is in
				// doubt and nothing more was bought.
				if got.Status != ledger.StatusInDoubt || got.Attempt == nil || got.Attempt.Seq != 2 || len(got.Numbers) != 1 {
					t.Fatalf("after a crash between buy and ledger write: %+v", got)
				}
				if n := e.Emu.Calls("BuySecretNo"); n != 2 {
					t.Fatalf("%d buy calls, want 2 (no buy after the doubt)", n)
				}
				e.Audit(map[string]*ledger.Order{id: got})
				// The operator finds the number (here from the emulator; in
				// production QuerySecretNoDetail or NumberManagementReport) and
				// settles the attempt; the order then resumes.
				sold := e.Emu.Purchases()
				lost := sold[len(sold)-1].SecretNo
				if got.Holds(lost) {
					t.Fatalf("number %s already in the ledger", lost)
				}
				if _, err := e.Reconciler().Bought(buytest.Ctx(t), id, lost, "test-operator"); err != nil {
					t.Fatal(err)
				}
				got = e.WaitStopped([]string{id}, 30*time.Second)[id]
			}
			if got.Status != ledger.StatusCompleted || len(got.Numbers) != 3 {
				t.Fatalf("order %+v", got)
			}
			sold, inLedger, _ := e.Audit(map[string]*ledger.Order{id: got})
			if sold != 3 || inLedger != 3 {
				t.Fatalf("sold %d, in the ledger %d; want 3", sold, inLedger)
			}
			t.Logf("crash at %s #%d, restart: %d buy calls, %d sold, %d in the ledger and published, 0 double buys",
				c.point, c.nth, e.Emu.Calls("BuySecretNo"), sold, inLedger)
		})
	}
}

func waitFor(t *testing.T, cond func() bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCutConnectionIsInDoubt: the emulator sells the number and cuts the
// connection. The order goes in doubt, is not retried by any delivery, and
// resumes once settled.
func TestCutConnectionIsInDoubt(t *testing.T) {
	e := buytest.New(t)
	e.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	w := e.Worker("w")
	const id = "cut-1"
	b := buytest.Body(t, buytest.Order(id, 2))
	buytest.Handle(t, w, b)
	got, _ := e.Ledger.Get(buytest.Ctx(t), id)
	if got.Status != ledger.StatusInDoubt || got.Attempt == nil || got.Error.Code != string(provider.ErrInDoubt) {
		t.Fatalf("order %+v", got)
	}
	// Deliveries again, by other workers too: no buy.
	buytest.Handle(t, w, b)
	buytest.Handle(t, e.Worker("w2"), b)
	if n := e.Emu.Calls("BuySecretNo"); n != 1 {
		t.Fatalf("%d buy calls, want 1", n)
	}
	bk := e.Books()
	if d := bk.InDoubt[id]; len(d) != 1 || d[0].Attempt != 1 || d[0].Error.Code != "InDoubt" {
		t.Fatalf("in-doubt events %+v", d)
	}

	// Settle it: the cut call did sell a number.
	e.Faults.Set("BuySecretNo", fault.Fault{})
	sold := e.Emu.Purchases()
	if len(sold) != 1 {
		t.Fatalf("%d purchases", len(sold))
	}
	// The operator checks the number the cut call sold with
	// QuerySecretNoDetail through the same client, and settles with it.
	detail, err := e.Aliyun.NumberDetail(buytest.Ctx(t), buytest.Pool, sold[0].SecretNo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reconciler().Bought(buytest.Ctx(t), id, detail.SecretNo, "op"); err != nil {
		t.Fatal(err)
	}
	e.Run(w) // a consumer takes the order's new message
	got = e.WaitStopped([]string{id}, 10*time.Second)[id]
	if got.Status != ledger.StatusCompleted || len(got.Numbers) != 2 || got.Settlements[0].SecretNo != sold[0].SecretNo {
		t.Fatalf("after settling %+v", got)
	}
	s, l, _ := e.Audit(map[string]*ledger.Order{id: got})
	t.Logf("cut connection: 1 in-doubt event, no blind retry; settled and resumed: %d sold, %d in the ledger", s, l)
}

// TestFaultMix runs orders through emulator faults and checks each ends as
// it should and the counts add up.
func TestFaultMix(t *testing.T) {
	cases := []struct {
		name   string
		fault  fault.Fault
		status ledger.Status
		code   string
	}{
		{"throttled half the time", fault.Fault{ErrorCode: dypls.ThrottlingCode, ErrorRate: 0.5}, ledger.StatusCompleted, ""},
		{"business flow limit", fault.Fault{ErrorCode: "isv.FLOW_LIMIT", ErrorRate: 0.5}, ledger.StatusCompleted, ""},
		// A 5xx or an isp.* code may come after the cloud sold the number.
		{"5xx", fault.Fault{ErrorCode: "ServiceUnavailable"}, ledger.StatusInDoubt, "InDoubt"},
		{"5xx after selling", fault.Fault{ErrorAfterCode: "InternalError"}, ledger.StatusInDoubt, "InDoubt"},
		{"system error", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"}, ledger.StatusInDoubt, "InDoubt"},
		{"system error after selling", fault.Fault{ErrorAfterCode: "isp.SYSTEM_ERROR"}, ledger.StatusInDoubt, "InDoubt"},
		{"a proxy's page after selling", fault.Fault{GarbleRate: 1}, ledger.StatusInDoubt, "InDoubt"},
		{"QPS limit", fault.Fault{QPS: 20, Burst: 1}, ledger.StatusCompleted, ""},
		{"slow answers", fault.Fault{Latency: 30 * time.Millisecond}, ledger.StatusCompleted, ""},
		{"no number left", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"}, ledger.StatusFailed, "InsufficientInventory"},
		{"pool key unknown", fault.Fault{ErrorCode: "isv.POOLKEY_NOT_EXISTS"}, ledger.StatusFailed, ""},
		{"cut after buying", fault.Fault{CutRate: 1}, ledger.StatusInDoubt, "InDoubt"},
		{"timeout", fault.Fault{Latency: 3 * time.Second}, ledger.StatusInDoubt, "InDoubt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := buytest.New(t)
			e.Faults.Set("BuySecretNo", c.fault)
			w := e.Worker("w", worker.WithBuyTimeout(time.Second), worker.WithRetry(4, 5*time.Millisecond))
			const n = 4
			orderIDs := buytest.IDs("mix", n)
			for _, id := range orderIDs {
				buytest.Handle(t, w, buytest.Body(t, buytest.Order(id, 2)))
			}
			orders := e.WaitStopped(orderIDs, 30*time.Second)
			counts := map[ledger.Status]int{}
			for id, o := range orders {
				counts[o.Status]++
				if o.Status != c.status {
					t.Errorf("order %s %s (%+v), want %s", id, o.Status, o.Error, c.status)
				} else if c.code != "" && o.Error.Code != c.code {
					t.Errorf("order %s error %+v, want code %s", id, o.Error, c.code)
				}
			}
			sold, inLedger, unsettled := e.Audit(orders)
			st := w.Stats()
			if c.status == ledger.StatusInDoubt && st.Buys != n {
				t.Errorf("%d buy calls for %d orders in doubt: one each, never retried", st.Buys, n)
			}
			if st.Buys != st.Bought+st.Refused+int64(unsettled) {
				t.Errorf("buys %d != bought %d + refused %d + in doubt %d", st.Buys, st.Bought, st.Refused, unsettled)
			}
			t.Logf("%s: %v; %d buy calls = %d bought + %d refused + %d in doubt; emulator sold %d, ledger %d",
				c.name, counts, st.Buys, st.Bought, st.Refused, unsettled, sold, inLedger)
		})
	}
}

// TestOwnCredentialsRefusedWaits: a refusal of our own credentials or
// account (a rotated key, arrears) buys nothing and fails no order: the
// order waits for a later delivery, and completes once the operator has
// fixed the account.
func TestOwnCredentialsRefusedWaits(t *testing.T) {
	for _, code := range []string{"SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "isv.ACCOUNT_ABNORMAL", "Forbidden.RAM"} {
		t.Run(code, func(t *testing.T) {
			e := buytest.New(t)
			e.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: code})
			w := e.Worker("w", worker.WithRetry(1, time.Millisecond))
			b := buytest.Body(t, buytest.Order("cred-1", 2))
			err := w.HandleOrder(buytest.Ctx(t), b)
			if !errors.Is(err, worker.ErrRetryLater) || !errors.Is(err, provider.ErrUnauthorized) {
				t.Fatalf("HandleOrder = %v, want a retry-later Unauthorized", err)
			}
			got, err := e.Ledger.Get(buytest.Ctx(t), "cred-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Terminal() || got.Status == ledger.StatusInDoubt || len(got.Numbers) != 0 || got.Attempt != nil {
				t.Fatalf("after a refusal of our credentials: %s, %d numbers, attempt %+v", got.Status, len(got.Numbers), got.Attempt)
			}
			if n := len(e.Emu.Purchases()); n != 0 {
				t.Fatalf("the emulator sold %d numbers", n)
			}
			e.Faults.Set("BuySecretNo", fault.Fault{})
			buytest.Handle(t, w, b)
			got = e.WaitStopped([]string{"cred-1"}, 10*time.Second)["cred-1"]
			if got.Status != ledger.StatusCompleted || len(got.Numbers) != 2 || len(e.Emu.Purchases()) != 2 {
				t.Fatalf("after the fix: %s with %d numbers; the emulator sold %d", got.Status, len(got.Numbers), len(e.Emu.Purchases()))
			}
		})
	}
}

// TestThrottledOnLastDeliveryFails: a buy throttled on every try ends the
// order failed on its last delivery instead of waiting again.
func TestThrottledOnLastDeliveryFails(t *testing.T) {
	e := buytest.New(t, buytest.WithQueue(queue.WithMaxDeliver(2)))
	e.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: dypls.ThrottlingCode})
	w := e.Worker("w", worker.WithRetry(1, time.Millisecond), worker.WithNakDelay(100*time.Millisecond))
	e.Run(w)
	e.PublishRaw(buytest.Body(t, buytest.Order("thr-1", 1)), "thr-1")
	got := e.WaitStopped([]string{"thr-1"}, 20*time.Second)["thr-1"]
	if got.Status != ledger.StatusFailed || got.Error.Code != string(provider.ErrThrottled) || !strings.Contains(got.Error.Message, "last delivery") {
		t.Fatalf("order %+v %+v", got, got.Error)
	}
	if n := e.Emu.Calls("BuySecretNo"); n != 4 {
		t.Fatalf("%d buy calls, want 2 deliveries x 2 tries", n)
	}
	e.Audit(map[string]*ledger.Order{"thr-1": got})
}

func TestNoStockFailsFast(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w")
	cases := []events.OrderRequested{
		{OrderID: "lhasa", PoolKey: buytest.Pool, City: "拉萨", SpecID: dypls.SpecCarrier, Quantity: 1},           // no stock at all
		{OrderID: "chengdu-virtual", PoolKey: buytest.Pool, City: "成都", SpecID: dypls.SpecVirtual, Quantity: 1}, // none of that type
		{OrderID: "prefix", PoolKey: buytest.Pool, City: "杭州", SpecID: dypls.SpecCarrier, Quantity: 1, Prefix: "1999"},
		{OrderID: "too-many", PoolKey: buytest.Pool, City: "杭州", SpecID: dypls.SpecVirtual, Quantity: 100},
	}
	for _, o := range cases {
		buytest.Handle(t, w, buytest.Body(t, o))
		got, err := e.Ledger.Get(buytest.Ctx(t), o.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ledger.StatusFailed || got.Error.Code != string(provider.ErrInsufficientInventory) || len(got.Numbers) != 0 {
			t.Errorf("%s: %+v %+v", o.OrderID, got, got.Error)
		}
		t.Logf("%s: %s", o.OrderID, got.Error.Message)
	}
	if n := e.Emu.Calls("BuySecretNo"); n != 0 {
		t.Fatalf("%d buy calls, want none", n)
	}
}

// TestStockRunsOutMidway: the stock check passes, then the cloud refuses a
// later buy; the order fails with the numbers bought so far.
func TestStockRunsOutMidway(t *testing.T) {
	e := buytest.New(t)
	var calls int
	var mu sync.Mutex
	w := e.Worker("w", worker.WithFaultHook(func(_ context.Context, p worker.Point, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		if p == worker.AfterRecord {
			calls++
			if calls == 2 { // two numbers bought: now the cloud runs dry
				e.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
			}
		}
		return nil
	}))
	buytest.Handle(t, w, buytest.Body(t, buytest.Order("mid-1", 5)))
	got := e.WaitStopped([]string{"mid-1"}, 10*time.Second)["mid-1"]
	if got.Status != ledger.StatusFailed || len(got.Numbers) != 2 || got.Error.Code != string(provider.ErrInsufficientInventory) {
		t.Fatalf("order %+v %+v", got, got.Error)
	}
	e.Audit(map[string]*ledger.Order{"mid-1": got})
	if f := e.Books().Failed["mid-1"]; len(f) != 1 || len(f[0].Numbers) != 2 {
		t.Fatalf("failed events %+v", f)
	}
}

// TestNATSRestartMidRun shuts the NATS server down and starts it again on the
// same store while two workers buy; nothing is lost or bought twice.
func TestNATSRestartMidRun(t *testing.T) {
	n := 40
	if buytest.Soak() {
		n = 400
	}
	e := buytest.New(t, buytest.WithNumbers(buytest.Hangzhou(3*n)...))
	e.Faults.Set("BuySecretNo", fault.Fault{Latency: 5 * time.Millisecond})
	w1, w2 := e.Worker("w1"), e.Worker("w2")
	e.Run(w1)
	e.Run(w2)
	orderIDs := buytest.IDs("rst", n)
	want := 0
	for i, id := range orderIDs {
		o := buytest.Order(id, 1+i%3)
		want += o.Quantity
		e.PublishRaw(buytest.Body(t, o), id)
	}
	// Restart twice while orders are under way.
	for r := range 2 {
		waitFor(t, func() bool { return buytest.SumStats(w1, w2).Bought >= int64((r+1)*want/4) }, 30*time.Second)
		e.NATS.Shutdown()
		time.Sleep(200 * time.Millisecond)
		if err := e.NATS.Restart(buytest.Ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	orders := e.WaitCompleted(orderIDs, 2*time.Minute)
	counts := map[ledger.Status]int{}
	for _, o := range orders {
		counts[o.Status]++
	}
	sold, inLedger, unsettled := e.Audit(orders)
	if counts[ledger.StatusCompleted] != n || sold != want || inLedger != want {
		for id, o := range orders {
			if o.Status != ledger.StatusCompleted {
				for _, l := range strings.Split(e.Logs.String(), "\n") {
					if strings.Contains(l, id) {
						t.Log(l)
					}
				}
				t.Logf("%s: %+v attempt %+v error %+v", id, o, o.Attempt, o.Error)
			}
		}
		t.Fatalf("statuses %v, sold %d, ledger %d, want %d", counts, sold, inLedger, want)
	}
	st := buytest.SumStats(w1, w2)
	t.Logf("%d orders, 2 NATS restarts mid-run: %v; %d sold, %d in the ledger, %d in doubt, 0 lost; %d messages (%d nak'ed)",
		n, counts, sold, inLedger, unsettled, st.Messages, st.Retried)
}

// TestMaxDeliveriesAdvisoryEndsOrder: a worker crashes on every delivery of
// an order until the consumer gives up; the advisory makes a healthy worker
// end the order instead of leaving it processing.
func TestMaxDeliveriesAdvisoryEndsOrder(t *testing.T) {
	for _, c := range []struct {
		point  worker.Point
		status ledger.Status
		code   string
	}{
		{worker.AfterClaim, ledger.StatusFailed, events.CodeMaxDeliveries},
		{worker.AfterBuy, ledger.StatusInDoubt, string(provider.ErrInDoubt)},
	} {
		t.Run(string(c.point), func(t *testing.T) {
			e := buytest.New(t, buytest.WithQueue(queue.WithMaxDeliver(2)))
			var mu sync.Mutex
			crashes, crashPoint := 0, c.point
			a := e.Worker("a", worker.WithFaultHook(func(_ context.Context, p worker.Point, _ string) error {
				mu.Lock()
				defer mu.Unlock()
				if p == crashPoint {
					crashes++
					return buytest.ErrCrash
				}
				return nil
			}), worker.WithLease(500*time.Millisecond))
			stopA := e.Run(a)
			e.PublishRaw(buytest.Body(t, buytest.Order("max-1", 2)), "max-1")
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return crashes >= 1 }, 10*time.Second)
			if c.point == worker.AfterBuy {
				// Crash once after a buy, then let every later delivery crash
				// right after its claim.
				mu.Lock()
				crashPoint = worker.AfterClaim
				mu.Unlock()
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return crashes >= 2 }, 10*time.Second)
			stopA()
			o, _ := e.Ledger.Get(buytest.Ctx(t), "max-1")
			if o.Status.Stopped() {
				t.Fatalf("order already %s before the advisory", o.Status)
			}

			b := e.Worker("b")
			e.Run(b)
			got := e.WaitStopped([]string{"max-1"}, 20*time.Second)["max-1"]
			if got.Status != c.status || got.Error.Code != c.code {
				t.Fatalf("order %s %+v, want %s %s", got.Status, got.Error, c.status, c.code)
			}
			e.Audit(map[string]*ledger.Order{"max-1": got})
			t.Logf("crashed at %s, then after each claim, until max deliveries: the advisory ended it %s (%s)", c.point, got.Status, got.Error.Message)
		})
	}
}

func TestDrain(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w")
	orderIDs := buytest.IDs("drn", 12)
	for _, id := range orderIDs {
		e.PublishRaw(buytest.Body(t, buytest.Order(id, 1)), id)
	}
	// Too little time left to start a buy: the messages go back untouched.
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second) // buy timeout is 5s
	st, err := w.Drain(short, e.Queue, 100)
	cancel()
	if err != nil || st.Messages != 0 || e.Emu.Calls("BuySecretNo") != 0 {
		t.Fatalf("short drain: %+v %v, %d buys", st, err, e.Emu.Calls("BuySecretNo"))
	}
	// A timer invocation drains them within its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if st, err := w.Drain(ctx, e.Queue, 100); err != nil || st.Messages != 12 {
		t.Fatalf("drain: %+v %v", st, err)
	}
	orders := e.WaitStopped(orderIDs, 20*time.Second)
	sold, inLedger, _ := e.Audit(orders)
	if sold != 12 || inLedger != 12 {
		t.Fatalf("sold %d, ledger %d", sold, inLedger)
	}
	t.Logf("timer drain: 12 orders, %d sold", sold)
}

// TestHandleOrders: the orders of one batch (an SQS batch, an EventBridge
// batch), our CloudEvent or bare, good or bad, one twice.
func TestHandleOrders(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w")
	one := buytest.Body(t, buytest.Order("ev-1", 1))
	errs := w.HandleOrders(buytest.Ctx(t), [][]byte{
		one,
		[]byte(`{"orderId":"ev-2","poolKey":"` + buytest.Pool + `","city":"北京","specId":2,"quantity":2}`),
		[]byte(`{"orderId":"ev-3","quantity":0}`),
		[]byte(`not json`),
		one, // a redelivery beside the original
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	orders := e.WaitStopped([]string{"ev-1", "ev-2", "ev-3"}, 10*time.Second)
	if orders["ev-1"].Status != ledger.StatusCompleted || orders["ev-2"].Status != ledger.StatusCompleted ||
		orders["ev-3"].Status != ledger.StatusFailed || orders["ev-3"].Error.Code != "InvalidParameter" {
		t.Fatalf("orders %v %v %v", orders["ev-1"].Status, orders["ev-2"].Status, orders["ev-3"].Error)
	}
	e.Audit(orders)
}

// TestClaimedElsewhereRetries: HandleOrder for an order another worker holds
// asks for a retry after that worker's lease, and buys nothing.
func TestClaimedElsewhereRetries(t *testing.T) {
	e := buytest.New(t)
	o, _, err := e.Ledger.CreateOrGet(buytest.Ctx(t), buytest.Order("held", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ledger.Claim(buytest.Ctx(t), o, "someone-else", time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	w := e.Worker("w", worker.WithNakDelay(5*time.Second))
	err = w.HandleOrder(buytest.Ctx(t), buytest.Body(t, buytest.Order("held", 1)))
	if !errors.Is(err, worker.ErrRetryLater) || !strings.Contains(err.Error(), "retry in 5s") {
		t.Fatalf("HandleOrder on a held order: %v", err)
	}
	if e.Emu.Calls("BuySecretNo")+e.Emu.Calls("QuerySecretNoRemain") != 0 {
		t.Fatal("called the cloud for an order held elsewhere")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := buytest.New(t)
	if _, err := worker.New(nil, e.Pub, e.Aliyun, e.Aliyun); err == nil {
		t.Error("no ledger accepted")
	}
	for name, opt := range map[string]worker.Option{
		"lease":       worker.WithLease(0),
		"concurrency": worker.WithConcurrency(0),
		"retries":     worker.WithRetry(-1, time.Second),
		"nak delay":   worker.WithNakDelay(-time.Second),
	} {
		if _, err := worker.New(e.Ledger, e.Pub, e.Aliyun, e.Aliyun, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBadInputOverQueue publishes bad orders onto the queue. Each with a
// usable order id ends failed with a reason naming the field; each without
// one is terminated with a logged reason. Nothing is bought, nothing loops.
func TestBadInputOverQueue(t *testing.T) {
	e := buytest.New(t)
	w := e.Worker("w")
	e.Run(w)
	const ok = `"poolKey":"` + buytest.Pool + `","city":"杭州","specId":2`
	failed := []struct{ id, body, field string }{
		{"q0", `{"orderId":"q0",` + ok + `,"quantity":0}`, "quantity"},
		{"q101", `{"orderId":"q101",` + ok + `,"quantity":101}`, "quantity"},
		{"qneg", `{"orderId":"qneg",` + ok + `,"quantity":-1}`, "quantity"},
		{"qstr", `{"orderId":"qstr",` + ok + `,"quantity":"2"}`, "quantity"},
		{"qfrac", `{"orderId":"qfrac",` + ok + `,"quantity":1.5}`, "quantity"},
		{"qnone", `{"orderId":"qnone",` + ok + `}`, "quantity"},
		{"spec4", `{"orderId":"spec4","poolKey":"P1","city":"杭州","specId":4,"quantity":1}`, "specId"},
		{"specstr", `{"orderId":"specstr","poolKey":"P1","city":"杭州","specId":"2","quantity":1}`, "specId"},
		{"nopool", `{"orderId":"nopool","city":"杭州","specId":2,"quantity":1}`, "poolKey"},
		{"poolsp", `{"orderId":"poolsp","poolKey":"P 1","city":"杭州","specId":2,"quantity":1}`, "poolKey"},
		{"nocity", `{"orderId":"nocity","poolKey":"P1","specId":2,"quantity":1}`, "city"},
		{"nation", `{"orderId":"nation","poolKey":"P1","city":"全国","specId":2,"quantity":1}`, "city"},
		{"natlist", `{"orderId":"natlist","poolKey":"P1","city":"全国列表","specId":2,"quantity":1}`, "city"},
		{"univ1", `{"orderId":"univ1","poolKey":"P1","city":"全国通用","specId":1,"quantity":1}`, "city"},
		{"spec3hz", `{"orderId":"spec3hz","poolKey":"P1","city":"杭州","specId":3,"quantity":1}`, "city"},
		{"pfxabc", `{"orderId":"pfxabc",` + ok + `,"quantity":1,"prefix":"13a"}`, "prefix"},
		{"pfxlong", `{"orderId":"pfxlong",` + ok + `,"quantity":1,"prefix":"1234567890123456789"}`, "prefix"},
		{"unknown", `{"orderId":"unknown",` + ok + `,"quantity":1,"quantitiy":2}`, "quantitiy"},
		{"dpstr", `{"orderId":"dpstr",` + ok + `,"quantity":1,"displayPool":"yes"}`, "displayPool"},
		{"cetype", `{"specversion":"1.0","id":"x","source":"/x","type":"xnum.order.completed","data":{"orderId":"cetype",` + ok + `,"quantity":1}}`, "type"},
		{"cever", `{"specversion":"0.3","id":"x","source":"/x","type":"xnum.order.requested","data":{"orderId":"cever",` + ok + `,"quantity":1}}`, "specversion"},
	}
	terminated := []string{
		`not json`,
		``,
		`[{"orderId":"arr"}]`,
		`{"orderId":"a.b",` + ok + `,"quantity":1}`,
		`{"orderId":"` + strings.Repeat("x", 129) + `",` + ok + `,"quantity":1}`,
		`{` + ok + `,"quantity":1}`,
		`{"orderId":42,` + ok + `,"quantity":1}`,
		`{"specversion":"1.0","id":"x","source":"/x","type":"xnum.order.requested","data":null}`,
	}
	for i, c := range failed {
		e.PublishRaw([]byte(c.body), fmt.Sprintf("bad-%d", i))
	}
	for i, b := range terminated {
		e.PublishRaw([]byte(b), fmt.Sprintf("term-%d", i))
	}
	// A valid order, then another payload under its id: the second is
	// refused and the first stays as it was.
	e.PublishRaw(buytest.Body(t, buytest.Order("conf-1", 1)), "conf-1")
	var ids []string
	for _, c := range failed {
		ids = append(ids, c.id)
	}
	orders := e.WaitStopped(append(ids, "conf-1"), 20*time.Second)
	e.PublishRaw(buytest.Body(t, buytest.Order("conf-1", 2)), "conf-1-other")
	waitFor(t, func() bool { return w.Stats().Terminated == int64(len(terminated)+1) }, 10*time.Second)

	bk := e.Books()
	for _, c := range failed {
		o := orders[c.id]
		if o.Status != ledger.StatusFailed || o.Error.Code != string(provider.ErrInvalidParameter) || !strings.Contains(o.Error.Message, c.field) {
			t.Errorf("%s: %s %+v, want failed naming %s", c.id, o.Status, o.Error, c.field)
		}
		if f := bk.Failed[c.id]; len(f) != 1 || f[0].Error != *o.Error {
			t.Errorf("%s: failed events %+v", c.id, f)
		}
	}
	conf, _ := e.Ledger.Get(buytest.Ctx(t), "conf-1")
	if conf.Status != ledger.StatusCompleted || conf.Quantity != 1 || len(conf.Numbers) != 1 || len(bk.Completed["conf-1"]) != 1 {
		t.Fatalf("the original order changed: %+v", conf)
	}
	if n := e.Emu.Calls("BuySecretNo"); n != 1 {
		t.Fatalf("%d buy calls, want the 1 of the valid order", n)
	}
	if ci, _ := e.Queue.Consumer.Info(buytest.Ctx(t)); ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Fatalf("consumer still has %d pending, %d unacked", ci.NumPending, ci.NumAckPending)
	}
	logs := e.Logs.String()
	if strings.Count(logs, "order message refused") != len(terminated)+1 {
		t.Errorf("%d refusals logged, want %d", strings.Count(logs, "order message refused"), len(terminated)+1)
	}
	t.Logf("%d bad orders failed with a reason, %d bad messages terminated with a logged reason, 1 conflicting payload refused; 0 buys for them",
		len(failed), len(terminated))
}
