package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// pool is the Dyplsapi pool key the tests buy into.
const pool = dypls.DefaultPoolKey

// env is one money-path world on loopback: an embedded NATS JetStream
// server, the queue set up on it, the ledger, the Dyplsapi emulator on an
// httptest server with its fault set, and the real aliyun client pointed at
// it.
type env struct {
	t       testing.TB
	nats    *embednats.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	q       *queue.Queue
	ledger  *ledger.Ledger
	pub     *queue.Publisher
	emu     *dypls.Server
	faults  *fault.Set
	aliyun  *aliyun.Client
	logs    *testutil.SyncBuffer
	workers []*worker.Worker
}

type envConfig struct {
	queue   []queue.Option
	numbers []dypls.Number
}

func withQueue(o ...queue.Option) func(*envConfig) {
	return func(c *envConfig) { c.queue = append(c.queue, o...) }
}
func withNumbers(n ...dypls.Number) func(*envConfig) {
	return func(c *envConfig) { c.numbers = append(c.numbers, n...) }
}
func newEnv(t testing.TB, mods ...func(*envConfig)) *env {
	return newEnvAt(t, embednats.RunTest(t), mods...)
}

// hangzhou returns n carrier numbers in 杭州 on top of the emulator's
// default stock, so big runs do not run dry.
func hangzhou(n int) []dypls.Number {
	out := make([]dypls.Number, n)
	for i := range out {
		out[i] = dypls.Number{SecretNo: fmt.Sprintf("1390571%05d", i), SpecID: dypls.SpecCarrier, City: "杭州", Province: "浙江", Vendor: dypls.VendorMobile}
	}
	return out
}

func newEnvAt(t testing.TB, srv *embednats.Server, mods ...func(*envConfig)) *env {
	t.Helper()
	cfg := envConfig{queue: []queue.Option{queue.WithAckWait(time.Second), queue.WithMaxDeliver(20)}}
	for _, m := range mods {
		m(&cfg)
	}
	e := &env{t: t, nats: srv, logs: &testutil.SyncBuffer{}}
	var err error
	e.nc, err = queue.Connect(srv.ClientURL(), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.nc.Close)
	e.js, _ = jetstream.New(e.nc)
	e.q, err = queue.Setup(ctxT(t), e.js, cfg.queue...)
	if err != nil {
		t.Fatal(err)
	}
	e.ledger = ledger.New(e.q.Ledger)
	e.pub = e.q.Publisher(queue.WithPublishRetry(10, 50*time.Millisecond), queue.WithPublishTimeout(time.Second))

	e.faults = fault.NewSet(7)
	dopts := []dypls.Option{dypls.WithFaults(e.faults)}
	if len(cfg.numbers) > 0 {
		dopts = append(dopts, dypls.WithNumbers(append(dypls.DefaultNumbers(), cfg.numbers...)...))
	}
	e.emu = dypls.New(dopts...)
	hs := httptest.NewServer(e.emu)
	t.Cleanup(hs.Close)
	e.aliyun, err = aliyun.New(aliyun.Config{
		AccessKeyID: dypls.DefaultAccessKeyID, AccessKeySecret: dypls.DefaultAccessKeySecret,
		Endpoint: hs.URL, ReadTimeout: 5 * time.Second, QueryAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.aliyun.CloseIdleConnections)
	return e
}

// worker returns a worker of e with test-sized timings.
func (e *env) worker(name string, opts ...worker.Option) *worker.Worker {
	e.t.Helper()
	all := append([]worker.Option{
		worker.WithName(name),
		worker.WithLogger(slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		worker.WithLease(2 * time.Second),
		worker.WithRetry(3, 10*time.Millisecond),
		worker.WithNakDelay(300 * time.Millisecond),
		worker.WithBuyTimeout(5 * time.Second),
		worker.WithRecordTimeout(30 * time.Second),
		worker.WithPullExpiry(2 * time.Second),
	}, opts...)
	w, err := worker.New(e.ledger, e.pub, e.aliyun, e.aliyun, all...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.workers = append(e.workers, w)
	return w
}

// run starts w.Run in the background; the returned stop ends it and waits.
func (e *env) run(w *worker.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, e.q) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func order(id string, qty int) events.OrderRequested {
	return events.OrderRequested{OrderID: id, PoolKey: pool, City: "杭州", SpecID: dypls.SpecCarrier, Quantity: qty}
}

func body(t testing.TB, o events.OrderRequested) []byte {
	ev, err := events.New("/test", time.Now(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	return b
}

// publishRaw puts body on order.requested under msgID, as any producer
// could; distinct msgIDs for one order make duplicate deliveries.
func (e *env) publishRaw(b []byte, msgID string) {
	e.t.Helper()
	if _, err := e.pub.Publish(ctxT(e.t), events.SubjectOrderRequested, msgID, b, nil); err != nil {
		e.t.Fatal(err)
	}
}

// handle calls HandleOrder until the worker says the message is done,
// waiting the delay it asks for between tries (as an event trigger's retry
// would).
func handle(t testing.TB, w *worker.Worker, b []byte) {
	t.Helper()
	for try := 0; ; try++ {
		err := w.HandleOrder(ctxT(t), b)
		if err == nil {
			return
		}
		delay, retry := worker.RetryDelay(err)
		if !retry || try > 50 {
			t.Fatalf("HandleOrder: %v", err)
		}
		time.Sleep(delay)
	}
}

// waitStopped waits until every order of ids is stopped (completed, failed
// or in doubt) with its event published, and the consumer has nothing left.
func (e *env) waitStopped(ids []string, timeout time.Duration) map[string]*ledger.Order {
	e.t.Helper()
	return e.waitFor(ids, timeout, func(o *ledger.Order) bool { return o.Status.Stopped() })
}

// waitCompleted is waitStopped for runs where every order must complete: a
// transient doubt (a worker's lease lapsed during an outage, its late answer
// settles it) is waited out.
func (e *env) waitCompleted(ids []string, timeout time.Duration) map[string]*ledger.Order {
	e.t.Helper()
	return e.waitFor(ids, timeout, func(o *ledger.Order) bool { return o.Status == ledger.StatusCompleted })
}

func (e *env) waitFor(ids []string, timeout time.Duration, final func(*ledger.Order) bool) map[string]*ledger.Order {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := map[string]*ledger.Order{}
		waiting := ""
		for _, id := range ids {
			o, err := e.ledger.Get(context.Background(), id)
			if err == nil && final(o) && o.EventPublished && len(o.Unpublished()) == 0 {
				out[id] = o
			} else if waiting == "" {
				waiting = id
				if err == nil {
					waiting += " (" + string(o.Status) + ")"
				}
			}
		}
		if waiting == "" {
			ci, err := e.q.Consumer.Info(context.Background())
			if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 {
				return out
			}
			waiting = "the consumer"
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %v still waiting for %s; %d of %d orders stopped", timeout, waiting, len(out), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamEvents reads every event on subject from the stream.
func (e *env) streamEvents(subject string) []events.Event {
	e.t.Helper()
	ctx := ctxT(e.t)
	c, err := e.js.OrderedConsumer(ctx, e.q.Config.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	want := int(info.NumPending)
	var out []events.Event
	for len(out) < want {
		batch, err := c.Fetch(min(500, want-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev events.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				e.t.Fatalf("event on %s does not decode: %v: %s", subject, err, m.Data())
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != ev.ID {
				e.t.Fatalf("event %s published with Msg-Id %q", ev.ID, id)
			}
			out = append(out, ev)
		}
		if got == 0 {
			e.t.Fatalf("read %d of %d events on %s", len(out), want, subject)
		}
	}
	return out
}

// books is what the stream says happened to the orders.
type books struct {
	numbers   map[string]events.NumberPurchased // by secretNo
	completed map[string][]events.OrderCompleted
	failed    map[string][]events.OrderFailed
	inDoubt   map[string][]events.OrderInDoubt
	dupNumber int // number events for a secretNo already seen
}

func (e *env) books() books {
	e.t.Helper()
	b := books{numbers: map[string]events.NumberPurchased{}, completed: map[string][]events.OrderCompleted{},
		failed: map[string][]events.OrderFailed{}, inDoubt: map[string][]events.OrderInDoubt{}}
	for _, ev := range e.streamEvents(events.SubjectNumberPurchased) {
		var d events.NumberPurchased
		mustData(e.t, ev, &d)
		if _, seen := b.numbers[d.SecretNo]; seen {
			b.dupNumber++
		}
		b.numbers[d.SecretNo] = d
	}
	for _, ev := range e.streamEvents(events.SubjectOrderCompleted) {
		var d events.OrderCompleted
		mustData(e.t, ev, &d)
		b.completed[d.OrderID] = append(b.completed[d.OrderID], d)
	}
	for _, ev := range e.streamEvents(events.SubjectOrderFailed) {
		var d events.OrderFailed
		mustData(e.t, ev, &d)
		b.failed[d.OrderID] = append(b.failed[d.OrderID], d)
	}
	for _, ev := range e.streamEvents(events.SubjectOrderInDoubt) {
		var d events.OrderInDoubt
		mustData(e.t, ev, &d)
		b.inDoubt[d.OrderID] = append(b.inDoubt[d.OrderID], d)
	}
	return b
}

func mustData(t testing.TB, ev events.Event, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(ev.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("event %s data: %v: %s", ev.ID, err, ev.Data)
	}
}

// audit checks the money rule over everything the emulator sold and the
// stream and ledger hold, and returns the figures:
//   - no order holds more numbers than its quantity;
//   - every number the emulator sold is in exactly one order of the ledger
//     (none lost, none twice), except those of attempts still in doubt;
//   - every ledger number has exactly one number.purchased, naming its order;
//   - every ended order has exactly one terminal event, matching the ledger.
func (e *env) audit(orders map[string]*ledger.Order) (sold, inLedger, unsettled int) {
	e.t.Helper()
	owner := map[string]string{}
	for id, o := range orders {
		if len(o.Numbers) > o.Quantity {
			e.t.Errorf("order %s holds %d numbers for quantity %d", id, len(o.Numbers), o.Quantity)
		}
		for _, n := range o.Numbers {
			if prev, dup := owner[n.SecretNo]; dup {
				e.t.Errorf("number %s is in orders %s and %s", n.SecretNo, prev, id)
			}
			owner[n.SecretNo] = id
			inLedger++
		}
		if o.Status == ledger.StatusInDoubt {
			unsettled++
		}
	}
	purchases := e.emu.Purchases()
	for _, p := range purchases {
		if p.PoolKey != pool {
			continue
		}
		sold++
		if _, ok := owner[p.SecretNo]; !ok && unsettled == 0 {
			e.t.Errorf("number %s was sold (request %s) but is in no order", p.SecretNo, p.RequestID)
		}
	}
	if sold < inLedger {
		e.t.Errorf("the ledger holds %d numbers, the emulator sold %d", inLedger, sold)
	}
	if unsettled == 0 && sold != inLedger {
		e.t.Errorf("the emulator sold %d numbers, the ledger holds %d", sold, inLedger)
	}
	if unsettled > 0 && sold-inLedger > unsettled {
		e.t.Errorf("%d numbers sold outside the ledger, only %d attempts in doubt", sold-inLedger, unsettled)
	}

	b := e.books()
	if b.dupNumber > 0 {
		e.t.Errorf("%d duplicate number.purchased events", b.dupNumber)
	}
	for no, id := range owner {
		ev, ok := b.numbers[no]
		if !ok {
			e.t.Errorf("number %s of order %s has no number.purchased", no, id)
		} else if ev.OrderID != id || ev.PoolKey != pool {
			e.t.Errorf("number.purchased %+v, want order %s", ev, id)
		}
	}
	for no := range b.numbers {
		if _, ok := owner[no]; !ok {
			e.t.Errorf("number.purchased for %s, which no order holds", no)
		}
	}
	for id, o := range orders {
		nc, nf := len(b.completed[id]), len(b.failed[id])
		switch o.Status {
		case ledger.StatusCompleted:
			if nc != 1 || nf != 0 || !slices.Equal(b.completed[id][0].Numbers, o.NumberList()) {
				e.t.Errorf("order %s completed: %d completed and %d failed events %+v", id, nc, nf, b.completed[id])
			}
		case ledger.StatusFailed:
			if nf != 1 || nc != 0 || !slices.Equal(b.failed[id][0].Numbers, o.NumberList()) || b.failed[id][0].Error != *o.Error {
				e.t.Errorf("order %s failed: %d failed and %d completed events %+v", id, nf, nc, b.failed[id])
			}
		case ledger.StatusInDoubt:
			if nc+nf != 0 || len(b.inDoubt[id]) == 0 {
				e.t.Errorf("order %s in doubt: %d terminal events, %d in-doubt events", id, nc+nf, len(b.inDoubt[id]))
			}
		}
	}
	return sold, inLedger, unsettled
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

func soak() bool { return os.Getenv("XNUM_SOAK") == "1" }

// sumStats adds up the workers' counters.
func sumStats(ws ...*worker.Worker) worker.Stats {
	var s worker.Stats
	for _, w := range ws {
		x := w.Stats()
		s.Messages += x.Messages
		s.Acked += x.Acked
		s.Retried += x.Retried
		s.Terminated += x.Terminated
		s.Aborted += x.Aborted
		s.Buys += x.Buys
		s.Bought += x.Bought
		s.Refused += x.Refused
		s.InDoubt += x.InDoubt
		s.Completed += x.Completed
		s.Failed += x.Failed
	}
	return s
}

// errCrash is what the fault hook returns to make a worker stop as if it
// crashed.
var errCrash = errors.New("simulated crash")

// crashAt returns a hook that crashes at p the nth time p is reached for
// order id (n from 1), once.
func crashAt(p worker.Point, id string, n int) (worker.Hook, func() bool) {
	var mu sync.Mutex
	seen, fired := 0, false
	return func(_ context.Context, at worker.Point, orderID string) error {
			mu.Lock()
			defer mu.Unlock()
			if at != p || orderID != id || fired {
				return nil
			}
			seen++
			if seen == n {
				fired = true
				return errCrash
			}
			return nil
		}, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return fired
		}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
