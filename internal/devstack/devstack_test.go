package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc/natsrpctest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// start runs the stack on free ports until the test ends.
func start(t *testing.T, dataDir string) Stack {
	t.Helper()
	return startWith(t, Config{DataDir: dataDir})
}

// startWith runs the stack of cfg on free ports until the test ends.
func startWith(t *testing.T, cfg Config) Stack {
	t.Helper()
	cfg.HTTPAddr, cfg.NATSAddr = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Stack, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, func(s Stack) { ready <- s })
	}()
	var s Stack
	select {
	case s = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after interrupt: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the stack did not stop within 15s of interrupt")
		}
	})
	return s
}

func post(t *testing.T, url, body string, hdr ...string) (int, string) {
	t.Helper()
	resp, b := testutil.Do(t, "POST", url, body, hdr...)
	return resp.StatusCode, string(b)
}

func getOrder(t *testing.T, s Stack, id string) (int, intake.Order) {
	t.Helper()
	resp, err := http.Get(s.HTTPURL + "/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o intake.Order
	json.NewDecoder(resp.Body).Decode(&o)
	return resp.StatusCode, o
}

func waitCompleted(t *testing.T, s Stack, id string) intake.Order {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, o := getOrder(t, s, id); code == 200 && o.Status == "completed" {
			return o
		} else if code == 200 && (o.Status == "failed" || o.Status == "in_doubt") {
			t.Fatalf("order %s ended %s: %+v", id, o.Status, o.Error)
		}
	}
	t.Fatalf("order %s not completed in time", id)
	return intake.Order{}
}

// The Done-when of the pipeline: one order over HTTP and one published
// straight onto xnum.orders.requested, duplicates of both, each bought
// exactly once, with the events published and the orders shown over HTTP.
func TestOrdersOverHTTPAndQueue(t *testing.T) {
	s := start(t, "")
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	var mu sync.Mutex
	got := map[string][]string{} // subject -> event ids
	sub, err := nc.Subscribe("xnum.>", func(m *nats.Msg) {
		var ev events.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.ID == m.Header.Get("Nats-Msg-Id") {
			mu.Lock()
			got[m.Subject] = append(got[m.Subject], ev.ID)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	httpOrder := `{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":3}`
	for i := range 3 {
		code, body := post(t, s.HTTPURL+"/orders", httpOrder, "Idempotency-Key", "dev-http-1")
		if (i == 0 && code != 202) || (i > 0 && code != 200) {
			t.Fatalf("POST %d: %d %s", i, code, body)
		}
	}
	if code, _ := post(t, s.HTTPURL+"/orders", strings.Replace(httpOrder, `"quantity":3`, `"quantity":4`, 1), "Idempotency-Key", "dev-http-1"); code != 409 {
		t.Fatalf("same id, other body: %d, want 409", code)
	}

	// Another system's producer, delivering twice under two message ids.
	queued := `{"orderId":"dev-queue-1","poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":2}`
	for _, msgID := range []string{"producer-a", "producer-b"} {
		m := nats.NewMsg(events.SubjectOrderRequested)
		m.Data = []byte(queued)
		m.Header.Set("Nats-Msg-Id", msgID)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}

	a := waitCompleted(t, s, "dev-http-1")
	b := waitCompleted(t, s, "dev-queue-1")
	if len(a.Numbers) != 3 || len(b.Numbers) != 2 {
		t.Fatalf("numbers: %v and %v", a.Numbers, b.Numbers)
	}
	sold := s.Emulator.Dypls().Purchases()
	if len(sold) != 5 {
		t.Fatalf("the emulator sold %d numbers for 3+2 ordered: %+v", len(sold), sold)
	}

	// Events: one purchased per number, one completed per order.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, c := len(got[events.SubjectNumberPurchased]), len(got[events.SubjectOrderCompleted])
		mu.Unlock()
		if n >= 5 && c >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := distinct(got[events.SubjectNumberPurchased]); n != 5 {
		t.Errorf("%d distinct number.purchased events, want 5: %v", n, got[events.SubjectNumberPurchased])
	}
	if c := got[events.SubjectOrderCompleted]; distinct(c) != 2 {
		t.Errorf("order.completed events %v, want one per order", c)
	}
	if f := got[events.SubjectOrderFailed]; len(f) != 0 {
		t.Errorf("order.failed events %v", f)
	}
	t.Logf("events: %v", got)
}

func distinct(ids []string) int {
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	return len(seen)
}

// A buy whose answer is cut settles itself: the emulator's report of the
// number reaches NATS, the settler takes it as the evidence, and the worker
// buys the rest. No number is bought twice.
func TestLostAnswerSettlesItself(t *testing.T) {
	s := startWith(t, Config{ReportsDelay: 100 * time.Millisecond,
		Emulator: []emulator.Option{emulator.WithFault("BuySecretNo", fault.Fault{CutRate: 1})}})
	if code, body := post(t, s.HTTPURL+"/orders", `{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":2}`,
		"Idempotency-Key", "dev-cut-1"); code != 202 {
		t.Fatalf("POST: %d %s", code, body)
	}
	testutil.WaitFor(t, "the cut buy", func() bool { return len(s.Emulator.Dypls().Purchases()) > 0 })
	s.Emulator.Faults().Set("BuySecretNo", fault.Fault{})
	o := waitCompletedThrough(t, s, "dev-cut-1")
	sold := s.Emulator.Dypls().Purchases()
	if len(sold) != 2 || len(o.Numbers) != 2 || o.Numbers[0] != sold[0].SecretNo {
		t.Fatalf("completed with %v; the emulator sold %+v", o.Numbers, sold)
	}
	l, err := s.Buy.Ledger.Get(context.Background(), "dev-cut-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Settlements) != 1 || l.Settlements[0].By != settle.By || l.Settlements[0].SecretNo != sold[0].SecretNo {
		t.Fatalf("settlements %+v", l.Settlements)
	}
	if st := s.Buy.Settler.Stats(); st.Settled != 1 {
		t.Fatalf("settler stats %+v", st)
	}
}

// waitCompletedThrough is waitCompleted for an order that passes through
// in_doubt on its way.
func waitCompletedThrough(t *testing.T, s Stack, id string) intake.Order {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, o := getOrder(t, s, id); code == 200 && o.Status == "completed" {
			return o
		} else if code == 200 && o.Status == "failed" {
			t.Fatalf("order %s failed: %+v", id, o.Error)
		}
	}
	_, o := getOrder(t, s, id)
	t.Fatalf("order %s not completed in time: %+v", id, o)
	return intake.Order{}
}

// The functions' NATS services answer as their HTTP routes do.
func TestNATSServices(t *testing.T) {
	s := start(t, "")
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var r remain.Response
	// The services register just after ready is called.
	if err := natsrpctest.Request(t, nc, remain.Subject, map[string]any{"city": "全国", "specId": 1}, &r); err != nil || r.Amount == 0 {
		t.Fatalf("xnum.remain: %+v %v", r, err)
	}
	err = natsrpc.Request(context.Background(), nc, remain.Subject, map[string]any{"city": "全国", "specId": 7}, &r)
	if re, ok := err.(*natsrpc.RemoteError); !ok || re.Status != 400 {
		t.Fatalf("xnum.remain with specId 7: %v, want a 400 error reply", err)
	}
}

// With --data the ledger and queue survive a restart of the whole stack.
func TestRestartKeepsOrders(t *testing.T) {
	dir := t.TempDir()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan Stack, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", DataDir: dir}, func(s Stack) { ready <- s })
		}()
		s := <-ready
		code, body := post(t, s.HTTPURL+"/orders", `{"orderId":"keep-1","poolKey":"FC100000000000001","city":"上海","specId":2,"quantity":1}`)
		if code != 202 {
			t.Fatalf("POST: %d %s", code, body)
		}
		waitCompleted(t, s, "keep-1")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	s := start(t, dir)
	if code, o := getOrder(t, s, "keep-1"); code != 200 || o.Status != "completed" || len(o.Numbers) != 1 {
		t.Fatalf("after restart: %d %+v", code, o)
	}
	if n := len(s.Emulator.Dypls().Purchases()); n != 0 {
		t.Fatalf("a restart bought %d numbers again", n)
	}
}

func TestBadAddresses(t *testing.T) {
	for _, cfg := range []Config{
		{HTTPAddr: "nope", NATSAddr: "127.0.0.1:0"},
		{HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1"},
		{HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:99999"},
	} {
		if err := Run(context.Background(), cfg, nil); err == nil {
			t.Errorf("Run(%+v): no error", cfg)
		}
	}
}

// --data keeps orders, so every write is synced before it is acknowledged;
// a temporary store is written as the server does by default.
func TestDataIsSyncedBeforeItIsAcknowledged(t *testing.T) {
	for _, dir := range []string{t.TempDir(), ""} {
		opts, err := natsOptions("127.0.0.1:0", dir)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := embednats.Start(opts...)
		if err != nil {
			t.Fatal(err)
		}
		got := ns.NATS().JetStreamConfig().SyncAlways
		ns.Close()
		if got != (dir != "") {
			t.Errorf("data dir %q: sync always %v", dir, got)
		}
	}
}
