// Package buytest is the money path's test world on loopback: an embedded
// NATS JetStream server, the queue set up on it, the ledger, the Dyplsapi
// emulator on an httptest server with its fault set (and, if asked, its
// number reports delivered to the reports stream), the real Alibaba
// client pointed at it, and the audit of the money rule over everything the
// emulator sold and the stream and the ledger hold. The worker, intake,
// reconcile, CLI and function tests all build on it.
package buytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// Pool is the Dyplsapi Pool key the tests buy into.
const Pool = dypls.DefaultPoolKey

// Env is one money-path world on loopback (see the package doc).
type Env struct {
	t       testing.TB
	NATS    *embednats.Server
	NC      *nats.Conn
	JS      jetstream.JetStream
	Queue   *queue.Queue
	Ledger  *ledger.Ledger
	Pub     *queue.Publisher
	Emu     *dypls.Server
	EmuURL  string // where Emu answers
	Faults  *fault.Set
	Aliyun  *aliyun.Client
	Logs    *testutil.SyncBuffer
	workers []*worker.Worker

	// ReportsPub stores on the reports stream (reports.Publish).
	ReportsPub *queue.Publisher
}

type config struct {
	nats    *embednats.Server
	queue   []queue.Option
	numbers []dypls.Number
	emu     []dypls.Option
	feed    *time.Duration
}

// Option changes the world New makes.
type Option func(*config)

// WithQueue passes options to queue.Setup (after the test defaults: 1 s ack
// wait, 20 deliveries).
func WithQueue(o ...queue.Option) Option {
	return func(c *config) { c.queue = append(c.queue, o...) }
}

// WithNumbers adds numbers to the emulator's default stock.
func WithNumbers(n ...dypls.Number) Option {
	return func(c *config) { c.numbers = append(c.numbers, n...) }
}

// WithEmulator passes options to the Dyplsapi emulator (a clock, pools).
func WithEmulator(o ...dypls.Option) Option {
	return func(c *config) { c.emu = append(c.emu, o...) }
}

// WithReportFeed delivers each NumberManagementReport of the emulator to
// the reports stream delay after the number changed, as MNS would
// (reports.Feed).
func WithReportFeed(delay time.Duration) Option { return func(c *config) { c.feed = &delay } }

// WithServer uses srv instead of a new embedded NATS server, e.g. one the
// test restarts.
func WithServer(srv *embednats.Server) Option { return func(c *config) { c.nats = srv } }

// Hangzhou returns n (at most 100,000) carrier numbers in 杭州 on top of
// the emulator's default stock, so big runs do not run dry. They are real
// mobile numbers, 11 digits, so the evidence rules take them.
func Hangzhou(n int) []dypls.Number {
	out := make([]dypls.Number, n)
	for i := range out {
		out[i] = dypls.Number{SecretNo: fmt.Sprintf("139057%05d", i), SpecID: dypls.SpecCarrier, City: "杭州", Province: "浙江", Vendor: dypls.VendorMobile}
	}
	return out
}

// New makes a world for t, torn down when t ends.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := config{queue: []queue.Option{queue.WithAckWait(time.Second), queue.WithMaxDeliver(20)}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.nats == nil {
		cfg.nats = embednats.RunTest(t)
	}
	srv := cfg.nats
	e := &Env{t: t, NATS: srv, Logs: &testutil.SyncBuffer{}}
	var err error
	e.NC, err = queue.Connect(srv.ClientURL(), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.NC.Close)
	e.JS, _ = jetstream.New(e.NC)
	e.Queue, err = queue.Setup(Ctx(t), e.JS, cfg.queue...)
	if err != nil {
		t.Fatal(err)
	}
	e.Ledger = ledger.New(e.Queue.Ledger)
	e.Pub = e.Queue.Publisher(queue.WithPublishRetry(10, 50*time.Millisecond), queue.WithPublishTimeout(time.Second))

	e.ReportsPub = queue.NewPublisher(e.JS, queue.WithExpectStream(queue.ReportsStreamName),
		queue.WithPublishRetry(10, 50*time.Millisecond), queue.WithPublishTimeout(time.Second))

	e.Faults = fault.NewSet(7)
	dopts := append([]dypls.Option{dypls.WithFaults(e.Faults)}, cfg.emu...)
	if cfg.feed != nil {
		feed := reports.NewFeed(e.ReportsPub, *cfg.feed, reports.WithFeedLogger(slog.New(slog.NewJSONHandler(e.Logs, nil))))
		t.Cleanup(feed.Close)
		dopts = append(dopts, dypls.WithReportHook(func(r dypls.Report) { feed.Add(r) }))
	}
	if len(cfg.numbers) > 0 {
		dopts = append(dopts, dypls.WithNumbers(append(dypls.DefaultNumbers(), cfg.numbers...)...))
	}
	if e.Emu, err = dypls.New(dopts...); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.Emu)
	t.Cleanup(hs.Close)
	e.EmuURL = hs.URL
	e.Aliyun, err = aliyun.New(aliyun.Config{
		AccessKeyID: dypls.DefaultAccessKeyID, AccessKeySecret: dypls.DefaultAccessKeySecret,
		Endpoint: hs.URL, ReadTimeout: 5 * time.Second, QueryAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Aliyun.CloseIdleConnections)
	return e
}

// Worker returns a worker of e with test-sized timings.
func (e *Env) Worker(name string, opts ...worker.Option) *worker.Worker {
	e.t.Helper()
	return e.WorkerBuying(e.Aliyun, name, opts...)
}

// WorkerBuying is Worker with buys going through b (a wrapper of e.Aliyun
// that holds or drops answers, say).
func (e *Env) WorkerBuying(b provider.Purchaser, name string, opts ...worker.Option) *worker.Worker {
	e.t.Helper()
	all := append([]worker.Option{
		worker.WithName(name),
		worker.WithLogger(slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		worker.WithLease(2 * time.Second),
		worker.WithRetry(3, 10*time.Millisecond),
		worker.WithNakDelay(300 * time.Millisecond),
		worker.WithBuyTimeout(5 * time.Second),
		worker.WithRecordTimeout(30 * time.Second),
		worker.WithPullExpiry(2 * time.Second),
	}, opts...)
	w, err := worker.New(e.Ledger, e.Pub, b, e.Aliyun, all...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.workers = append(e.workers, w)
	return w
}

// Reconciler returns the operator's reconciler over e: evidence through
// e.Aliyun, settled orders published again on e's stream.
func (e *Env) Reconciler(opts ...reconcile.Option) *reconcile.Reconciler {
	return reconcile.New(e.Ledger, e.Aliyun, redrive.New(e.Ledger, e.Pub), opts...)
}

// Get reads order id from the ledger.
func (e *Env) Get(id string) *ledger.Order {
	e.t.Helper()
	o, err := e.Ledger.Get(Ctx(e.t), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// DeliverReports stores every NumberManagementReport the emulator has made
// so far on the reports stream, now (a report stored twice is kept once).
func (e *Env) DeliverReports() {
	e.t.Helper()
	for _, r := range e.Emu.Reports() {
		b, _ := json.Marshal(r)
		if _, err := reports.Publish(Ctx(e.t), e.ReportsPub, b); err != nil {
			e.t.Fatal(err)
		}
	}
}

// Settler returns a settler over e with test-sized intervals (a pass every
// 100 ms, a rescan every second), settling through e.Reconciler.
func (e *Env) Settler(opts ...settle.Option) *settle.Settler {
	e.t.Helper()
	s, err := settle.New(e.Ledger, e.Reconciler(), e.Queue.Reports, append([]settle.Option{
		settle.WithEvery(100*time.Millisecond, time.Second),
		settle.WithLogger(slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// RunSettler starts s.Run in the background until the test ends.
func (e *Env) RunSettler(s *settle.Settler) {
	testutil.Run(e.t, func(ctx context.Context) error { return s.Run(ctx, e.Queue) })
}

// Run starts w.Run in the background; the returned stop ends it and waits.
func (e *Env) Run(w *worker.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, e.Queue) }()
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

// Ctx is a context that ends with the test, or after two minutes.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Order is a carrier-number order in 杭州 into Pool.
func Order(id string, qty int) events.OrderRequested {
	return events.OrderRequested{OrderID: id, PoolKey: Pool, City: "杭州", SpecID: dypls.SpecCarrier, Quantity: qty}
}

// Body is o as our CloudEvent, the way the intake publishes it.
func Body(t testing.TB, o events.OrderRequested) []byte {
	ev, err := events.New("/test", time.Now(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	return b
}

// PublishRaw puts body on order.requested under msgID, as any producer
// could; distinct msgIDs for one order make duplicate deliveries.
func (e *Env) PublishRaw(b []byte, msgID string) {
	e.t.Helper()
	if _, err := e.Pub.Publish(Ctx(e.t), events.SubjectOrderRequested, msgID, b, nil); err != nil {
		e.t.Fatal(err)
	}
}

// Handle calls HandleOrder until the worker says the message is done,
// waiting a little between tries (as an event trigger's retry would).
func Handle(t testing.TB, w *worker.Worker, b []byte) {
	t.Helper()
	for try := 0; ; try++ {
		err := w.HandleOrder(Ctx(t), b)
		if err == nil {
			return
		}
		if !errors.Is(err, worker.ErrRetryLater) || try > 100 {
			t.Fatalf("HandleOrder: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitStopped waits until every order of ids is stopped (completed, failed
// or in doubt) with its event published, and the consumer has nothing left.
func (e *Env) WaitStopped(ids []string, timeout time.Duration) map[string]*ledger.Order {
	e.t.Helper()
	return e.WaitFor(ids, timeout, func(o *ledger.Order) bool { return o.Status.Stopped() })
}

// WaitCompleted is WaitStopped for runs where every order must complete: a
// transient doubt (a worker's lease lapsed during an outage, its late answer
// settles it) is waited out.
func (e *Env) WaitCompleted(ids []string, timeout time.Duration) map[string]*ledger.Order {
	e.t.Helper()
	return e.WaitFor(ids, timeout, func(o *ledger.Order) bool { return o.Status == ledger.StatusCompleted })
}

// WaitFor waits until final holds for every order of ids, with its events
// published, and the consumer has nothing left.
func (e *Env) WaitFor(ids []string, timeout time.Duration, final func(*ledger.Order) bool) map[string]*ledger.Order {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := map[string]*ledger.Order{}
		waiting := ""
		for _, id := range ids {
			o, err := e.Ledger.Get(context.Background(), id)
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
			ci, err := e.Queue.Consumer.Info(context.Background())
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

// StreamEvents reads every event on subject from the stream.
func (e *Env) StreamEvents(subject string) []events.Event {
	e.t.Helper()
	ctx := Ctx(e.t)
	c, err := e.JS.OrderedConsumer(ctx, e.Queue.Config.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
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

// Books is what the stream says happened to the orders.
type Books struct {
	Numbers   map[string]events.NumberPurchased // by secretNo
	Completed map[string][]events.OrderCompleted
	Failed    map[string][]events.OrderFailed
	InDoubt   map[string][]events.OrderInDoubt
	DupNumber int // number events for a secretNo already seen
}

// Books reads every event from the stream.
func (e *Env) Books() Books {
	e.t.Helper()
	b := Books{Numbers: map[string]events.NumberPurchased{}, Completed: map[string][]events.OrderCompleted{},
		Failed: map[string][]events.OrderFailed{}, InDoubt: map[string][]events.OrderInDoubt{}}
	for _, ev := range e.StreamEvents(events.SubjectNumberPurchased) {
		var d events.NumberPurchased
		MustData(e.t, ev, &d)
		if _, seen := b.Numbers[d.SecretNo]; seen {
			b.DupNumber++
		}
		b.Numbers[d.SecretNo] = d
	}
	for _, ev := range e.StreamEvents(events.SubjectOrderCompleted) {
		var d events.OrderCompleted
		MustData(e.t, ev, &d)
		b.Completed[d.OrderID] = append(b.Completed[d.OrderID], d)
	}
	for _, ev := range e.StreamEvents(events.SubjectOrderFailed) {
		var d events.OrderFailed
		MustData(e.t, ev, &d)
		b.Failed[d.OrderID] = append(b.Failed[d.OrderID], d)
	}
	for _, ev := range e.StreamEvents(events.SubjectOrderInDoubt) {
		var d events.OrderInDoubt
		MustData(e.t, ev, &d)
		b.InDoubt[d.OrderID] = append(b.InDoubt[d.OrderID], d)
	}
	return b
}

// MustData decodes ev's data strictly into v.
func MustData(t testing.TB, ev events.Event, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(ev.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("event %s data: %v: %s", ev.ID, err, ev.Data)
	}
}

// Audit checks the money rule over everything the emulator sold and the
// stream and ledger hold, and returns the figures:
//   - no order holds more numbers than its quantity;
//   - every number the emulator sold is in exactly one order of the ledger,
//     among its numbers or its excess (none lost, none twice), except those
//     of attempts still in doubt; inLedger counts both;
//   - every ledger number has exactly one number.purchased, naming its order,
//     and every excess number one number.excess;
//   - every ended order has exactly one terminal event, matching the ledger.
func (e *Env) Audit(orders map[string]*ledger.Order) (sold, inLedger, unsettled int) {
	e.t.Helper()
	owner, excess := map[string]string{}, map[string]string{}
	for id, o := range orders {
		if len(o.Numbers) > o.Quantity {
			e.t.Errorf("order %s holds %d numbers for quantity %d", id, len(o.Numbers), o.Quantity)
		}
		for _, n := range append(slices.Clone(o.Numbers), o.Excess...) {
			if prev, dup := owner[n.SecretNo]; dup {
				e.t.Errorf("number %s is in orders %s and %s", n.SecretNo, prev, id)
			}
			owner[n.SecretNo] = id
			inLedger++
		}
		for _, n := range o.Excess {
			excess[n.SecretNo] = id
		}
		if o.Status == ledger.StatusInDoubt {
			unsettled++
		}
	}
	purchases := e.Emu.Purchases()
	for _, p := range purchases {
		if p.PoolKey != Pool {
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

	b := e.Books()
	if b.DupNumber > 0 {
		e.t.Errorf("%d duplicate number.purchased events", b.DupNumber)
	}
	excessEvents := map[string]string{}
	for _, ev := range e.StreamEvents(events.SubjectNumberExcess) {
		var d events.NumberExcess
		MustData(e.t, ev, &d)
		excessEvents[d.SecretNo] = d.OrderID
	}
	if !maps.Equal(excess, excessEvents) {
		e.t.Errorf("excess numbers %v, number.excess events %v", excess, excessEvents)
	}
	for no, id := range owner {
		if _, isExcess := excess[no]; isExcess {
			continue
		}
		ev, ok := b.Numbers[no]
		if !ok {
			e.t.Errorf("number %s of order %s has no number.purchased", no, id)
		} else if ev.OrderID != id || ev.PoolKey != Pool {
			e.t.Errorf("number.purchased %+v, want order %s", ev, id)
		}
	}
	for no := range b.Numbers {
		if _, ok := owner[no]; !ok || excess[no] != "" {
			e.t.Errorf("number.purchased for %s, which no order holds", no)
		}
	}
	for id, o := range orders {
		nc, nf := len(b.Completed[id]), len(b.Failed[id])
		switch o.Status {
		case ledger.StatusCompleted:
			if nc != 1 || nf != 0 || !slices.Equal(b.Completed[id][0].Numbers, o.NumberList()) {
				e.t.Errorf("order %s completed: %d completed and %d failed events %+v", id, nc, nf, b.Completed[id])
			}
		case ledger.StatusFailed:
			if nf != 1 || nc != 0 || !slices.Equal(b.Failed[id][0].Numbers, o.NumberList()) || b.Failed[id][0].Error != *o.Error {
				e.t.Errorf("order %s failed: %d failed and %d completed events %+v", id, nf, nc, b.Failed[id])
			}
		case ledger.StatusInDoubt:
			if nc+nf != 0 || len(b.InDoubt[id]) == 0 {
				e.t.Errorf("order %s in doubt: %d terminal events, %d in-doubt events", id, nc+nf, len(b.InDoubt[id]))
			}
		}
	}
	return sold, inLedger, unsettled
}

// IDs are n order ids prefix-0000, prefix-0001, ...
func IDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// Soak reports whether the long runs are asked for (XNUM_SOAK=1).
func Soak() bool { return os.Getenv("XNUM_SOAK") == "1" }

// SumStats adds up the workers' counters.
func SumStats(ws ...*worker.Worker) worker.Stats {
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

// ErrCrash is what the fault hook returns to make a worker stop as if it
// crashed.
var ErrCrash = errors.New("simulated crash")

// CrashAt returns a hook that crashes at p the nth time p is reached for
// order id (n from 1), once.
func CrashAt(p worker.Point, id string, n int) (worker.Hook, func() bool) {
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
				return ErrCrash
			}
			return nil
		}, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return fired
		}
}

// SortedKeys returns m's keys in order.
func SortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
