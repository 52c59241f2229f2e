package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// broker is an embedded NATS JetStream server with a client connection.
type broker struct {
	srv *embednats.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startBroker() (*broker, error) {
	srv, err := embednats.Start()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Close()
		return nil, err
	}
	return &broker{srv: srv, nc: nc, js: js}, nil
}

func (b *broker) Close() {
	b.nc.Close()
	b.srv.Close()
}

// publishAsync publishes every message with its Msg-Id without waiting for
// each ack in turn, and waits for all acks at the end.
func publishAsync(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	var failed atomic.Int64
	var first atomic.Value
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		go func() {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				if failed.Add(1) == 1 {
					first.Store(err)
				}
			}
		}()
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d publishes failed, first: %v", n, first.Load())
	}
	return nil
}

// outcome counts the terminal events of a run's orders.
type outcome struct {
	mu                         sync.Mutex
	want                       map[string]bool
	completed, failed, inDoubt int
	firstProblem               string
	all                        chan struct{}
	closed                     bool
}

func (o *outcome) see(subject string, data []byte) {
	var ev events.Event
	var body struct {
		OrderID string        `json:"orderId"`
		Error   *events.Error `json:"error"`
	}
	if json.Unmarshal(data, &ev) != nil || json.Unmarshal(ev.Data, &body) != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.want[body.OrderID] {
		return // another run's, or a duplicate
	}
	delete(o.want, body.OrderID)
	switch subject {
	case events.SubjectOrderCompleted:
		o.completed++
	case events.SubjectOrderFailed:
		o.failed++
	case events.SubjectOrderInDoubt:
		o.inDoubt++
	}
	if subject != events.SubjectOrderCompleted && o.firstProblem == "" && body.Error != nil {
		o.firstProblem = body.OrderID + ": " + body.Error.Code + ": " + body.Error.Message
	}
	if len(o.want) == 0 && !o.closed {
		o.closed = true
		close(o.all)
	}
}

func (o *outcome) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := fmt.Sprintf("%d completed, %d failed, %d in doubt, %d without an end", o.completed, o.failed, o.inDoubt, len(o.want))
	if o.firstProblem != "" {
		s += " (first: " + o.firstProblem + ")"
	}
	return s
}

// runOrders starts a worker on b's queue buying from c, publishes orders,
// and returns the time from the first publish to the last terminal event,
// with the worker's counts.
func runOrders(ctx context.Context, b *broker, c *cloud, orders []events.OrderRequested, timeout time.Duration, opts ...worker.Option) (time.Duration, *outcome, worker.Stats, error) {
	q, err := queue.Setup(ctx, b.js)
	if err != nil {
		return 0, nil, worker.Stats{}, err
	}
	client, err := c.aliyun()
	if err != nil {
		return 0, nil, worker.Stats{}, err
	}
	defer client.CloseIdleConnections()
	w, err := worker.New(ledger.New(q.Ledger), q.Publisher(), client, client, opts...)
	if err != nil {
		return 0, nil, worker.Stats{}, err
	}

	out := &outcome{want: map[string]bool{}, all: make(chan struct{})}
	msgs := make([]*nats.Msg, len(orders))
	for i, o := range orders {
		out.want[o.OrderID] = true
		ev, err := events.New(events.SourceIntake, time.Now(), o)
		if err != nil {
			return 0, nil, worker.Stats{}, err
		}
		body, err := json.Marshal(ev)
		if err != nil {
			return 0, nil, worker.Stats{}, err
		}
		msgs[i] = &nats.Msg{Subject: events.SubjectOrderRequested, Data: body, Header: nats.Header{
			jetstream.MsgIDHeader: []string{ev.MsgID()}, "Content-Type": []string{events.ContentType}}}
	}
	for _, subj := range []string{events.SubjectOrderCompleted, events.SubjectOrderFailed, events.SubjectOrderInDoubt} {
		sub, err := b.nc.Subscribe(subj, func(m *nats.Msg) { out.see(m.Subject, m.Data) })
		if err != nil {
			return 0, nil, worker.Stats{}, err
		}
		sub.SetPendingLimits(-1, -1)
		defer sub.Unsubscribe()
	}
	if err := b.nc.Flush(); err != nil {
		return 0, nil, worker.Stats{}, err
	}

	wctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(wctx, q) }()
	defer func() {
		stop()
		<-ran
	}()

	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cpu0, busy0 := cpuTime(), machineBusy()
	t0 := time.Now()
	if err := publishAsync(tctx, b.js, msgs); err != nil {
		return 0, out, w.Stats(), err
	}
	select {
	case <-out.all:
		d := time.Since(t0)
		own, all := cpuTime()-cpu0, machineBusy()-busy0
		logf("orders: %v of CPU per order; the bench process used %.0f%% of a CPU, the whole machine %.0f%%; %s",
			perItem(own, len(orders)), 100*own.Seconds()/d.Seconds(), 100*all.Seconds()/d.Seconds(), writesPerOrder(ctx, q, len(orders)))
		return d, out, w.Stats(), nil
	case err := <-ran:
		return 0, out, w.Stats(), fmt.Errorf("worker stopped: %v", err)
	case <-tctx.Done():
		return 0, out, w.Stats(), fmt.Errorf("not done within %v: %s", timeout, out)
	}
}

// makeOrders makes n orders of quantity each, round robin over cities.
func makeOrders(tag string, n, quantity int, cities []string) []events.OrderRequested {
	orders := make([]events.OrderRequested, n)
	stamp := time.Now().UnixNano()
	for i := range orders {
		orders[i] = events.OrderRequested{
			OrderID:  fmt.Sprintf("%s-%d-%d", tag, stamp, i),
			PoolKey:  dypls.DefaultPoolKey,
			City:     cities[i%len(cities)],
			SpecID:   provider.SpecCarrier,
			Quantity: quantity,
		}
	}
	return orders
}

// pipelineRow measures orders of quantity 1 end to end through the worker,
// with a zero-latency emulator.
func pipelineRow(ctx context.Context, o options) Row {
	row := Row{
		Figure: fmt.Sprintf("pipeline: %d orders of quantity 1, requested to completed, %d at once", o.orders, o.workers),
		Unit:   "orders/s",
		Goals:  []Goal{AtLeast(2000, "orders/s")},
	}
	b, err := startBroker()
	if err != nil {
		row.Err = err
		return row
	}
	defer b.Close()
	c, err := startCloud()
	if err != nil {
		row.Err = err
		return row
	}
	defer c.Close()
	cities, err := c.stock(1, o.orders, 50)
	if err != nil {
		row.Err = err
		return row
	}
	orders := makeOrders("pipe", o.orders, 1, cities)

	timeout := 30*time.Second + time.Duration(o.orders)*5*time.Millisecond
	var elapsed time.Duration
	var out *outcome
	var st worker.Stats
	profiled(o, "pipeline", func() {
		elapsed, out, st, err = runOrders(ctx, b, c, orders, timeout, worker.WithConcurrency(o.workers), worker.WithBuyQPS(0))
	})
	logf("pipeline: %d orders in %v: %v; worker %+v", len(orders), elapsed.Round(time.Millisecond), out, st)
	if err != nil {
		row.Err = err
		return row
	}
	row.Measured = float64(len(orders)) / elapsed.Seconds()
	row.Err = checkBought(c, out, len(orders))
	return row
}

// checkBought holds a run to the money rule: every order completed, and
// exactly as many numbers bought as asked for.
func checkBought(c *cloud, out *outcome, wantNumbers int) error {
	var problems []string
	if out.failed+out.inDoubt > 0 {
		problems = append(problems, out.String())
	}
	if got := len(c.Dypls().Purchases()); got != wantNumbers {
		problems = append(problems, fmt.Sprintf("%d numbers bought for %d asked", got, wantNumbers))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// limitRows measures numbers bought per second through the worker when the
// emulator allows BuySecretNo o.qps times a second and answers 20 ms late,
// with the worker's own limit set to that QPS (XNUM_ALIYUN_BUY_QPS).
func limitRows(ctx context.Context, o options) []Row {
	numbers := o.limitOrders * o.limitQuantity
	rate := Row{
		Figure: fmt.Sprintf("provider limit: numbers bought/s, BuySecretNo limited to %s QPS + 20 ms, %d orders × %d",
			fmtFloat(o.qps), o.limitOrders, o.limitQuantity),
		Unit:       "numbers/s",
		Baseline:   o.qps,
		BaselineOf: "the QPS",
		Goals:      []Goal{RatioAtLeast(0.95)},
	}
	throttled := Row{
		Figure: "provider limit: throttling answers from the emulator",
		Unit:   "count",
		Goals:  []Goal{None()},
	}
	fail := func(err error) []Row {
		rate.Err, throttled.Err = err, err
		return []Row{rate, throttled}
	}
	b, err := startBroker()
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	c, err := startCloud(emulator.WithFault("BuySecretNo", fault.Fault{QPS: o.qps, Latency: 20 * time.Millisecond}))
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	cities, err := c.stock(2, numbers, o.limitQuantity)
	if err != nil {
		return fail(err)
	}
	orders := makeOrders("limit", o.limitOrders, o.limitQuantity, cities)
	timeout := 30*time.Second + time.Duration(float64(numbers)/o.qps*2*float64(time.Second))
	elapsed, out, st, err := runOrders(ctx, b, c, orders, timeout,
		worker.WithConcurrency(o.workers), worker.WithBuyQPS(o.qps))
	logf("provider limit: %d numbers in %v: %v; worker %+v", numbers, elapsed.Round(time.Millisecond), out, st)
	if err != nil {
		return fail(err)
	}
	rate.Measured = float64(numbers) / elapsed.Seconds()
	rate.Err = checkBought(c, out, numbers)
	throttled.Measured = float64(c.Dypls().Calls("BuySecretNo") - len(c.Dypls().Purchases()))
	return []Row{rate, throttled}
}

// cpuTime is the CPU time the bench process (worker, NATS server, emulator
// and all) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time every process on the machine has used, from
// /proc/stat; 0 when it cannot be read.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func perItem(d time.Duration, n int) time.Duration {
	return (d / time.Duration(n)).Round(time.Microsecond)
}

// writesPerOrder tells how many ledger revisions and stream messages a run
// on a fresh server left per order: the durable writes the money rule costs.
func writesPerOrder(ctx context.Context, q *queue.Queue, n int) string {
	si, err := q.Stream.Info(ctx)
	if err != nil {
		return err.Error()
	}
	ls, err := q.Ledger.Status(ctx)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("per order %.1f stream messages and %.1f ledger revisions (the bucket keeps at most %d per order)",
		float64(si.State.Msgs)/float64(n), float64(ls.Values())/float64(n), q.Config.LedgerHistory)
}
