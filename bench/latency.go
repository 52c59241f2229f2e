package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// workerFunction is the worker's name in the FC shape, as s.yaml deploys it.
const workerFunction = "xnum-buy-worker"

// latencyShape is one way of running buy: the processes to start, the
// order intake's address once they run.
type latencyShape struct {
	name   string
	intake string
	procs  []*proc
}

func (s *latencyShape) stop() {
	for _, p := range slices.Backward(s.procs) {
		p.stop()
	}
}

// completions records when each order's terminal event was seen.
type completions struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	ended map[string]string // order id → subject, for the failed and in doubt
}

func (c *completions) see(subject string, data []byte) {
	t := time.Now()
	var ev events.Event
	var body struct {
		OrderID string `json:"orderId"`
	}
	if json.Unmarshal(data, &ev) != nil || json.Unmarshal(ev.Data, &body) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.seen[body.OrderID]; !dup {
		c.seen[body.OrderID] = t
		c.ended[body.OrderID] = subject
	}
}

// wait returns when every id has ended or timeout passed, with the time each
// took from its start.
func (c *completions) wait(ids []string, started map[string]time.Time, timeout time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		var ds []time.Duration
		var problems []string
		for _, id := range ids {
			t, ok := c.seen[id]
			if !ok {
				continue
			}
			ds = append(ds, t.Sub(started[id]))
			if c.ended[id] != events.SubjectOrderCompleted {
				problems = append(problems, id+" "+c.ended[id])
			}
		}
		c.mu.Unlock()
		switch {
		case len(problems) > 0:
			return nil, fmt.Errorf("orders that did not complete: %v", problems)
		case len(ds) == len(ids):
			return ds, nil
		case time.Now().After(deadline):
			return ds, fmt.Errorf("%d of %d orders completed within %v", len(ds), len(ids), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// percentile of sorted ds (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyRows measures an order's latency — POST /orders to its
// order.completed event on NATS — in the dev shape (one buy process whose
// JetStream consumer buys) and in the FC shape (the buy binary as xnum-buy,
// waking xnum-buy-worker, a second process, through the emulator's FC; no
// consumer), orders arriving o.latencyRate a second, the emulator answering
// each Dyplsapi call o.latencyProvider late, the buy rate not limited. Then
// o.latencyBurst orders at once in the FC shape count its wake-ups.
func latencyRows(ctx context.Context, o options, bin string) []Row {
	figure := fmt.Sprintf("%d orders at %s/s, provider %v", o.latencyOrders, fmtFloat(o.latencyRate), o.latencyProvider)
	fail := func(err error) []Row { return []Row{{Figure: "order latency, " + figure, Err: err}} }
	if bin == "" {
		return fail(fmt.Errorf("no buy binary"))
	}
	b, err := startBroker()
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	slow := fault.Fault{Latency: o.latencyProvider}
	c, err := startCloud(emulator.WithFault("BuySecretNo", slow), emulator.WithFault("QuerySecretNoRemain", slow),
		emulator.WithFCOptions(fc.WithRetryDelay(time.Second)))
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	defer c.FC().Close()
	total := 2*o.latencyOrders + o.latencyBurst
	cities, err := c.stock(3, total, 50)
	if err != nil {
		return fail(err)
	}
	done := &completions{seen: map[string]time.Time{}, ended: map[string]string{}}
	for _, subj := range []string{events.SubjectOrderCompleted, events.SubjectOrderFailed, events.SubjectOrderInDoubt} {
		sub, err := b.nc.Subscribe(subj, func(m *nats.Msg) { done.see(m.Subject, m.Data) })
		if err != nil {
			return fail(err)
		}
		sub.SetPendingLimits(-1, -1)
		defer sub.Unsubscribe()
	}
	if err := b.nc.Flush(); err != nil {
		return fail(err)
	}
	env := append(c.aliyunEnv(), "NATS_URL="+b.srv.ClientURL(), "XNUM_ALIYUN_BUY_QPS=0", "XNUM_LOG_LEVEL=warn")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
	defer client.CloseIdleConnections()
	orders := makeOrders("lat", total, 1, cities)
	timeout := 2*time.Minute + time.Duration(float64(o.latencyOrders)/o.latencyRate*float64(time.Second))

	// The dev shape.
	dev, err := devShape(ctx, bin, env)
	if err != nil {
		return fail(fmt.Errorf("dev shape: %w", err))
	}
	devLat, err := paced(ctx, client, dev.intake, orders[:o.latencyOrders], o.latencyRate, done, timeout)
	dev.stop()
	if err != nil {
		return fail(fmt.Errorf("dev shape: %w", err))
	}

	// The FC shape.
	fcs, err := fcShape(ctx, bin, env, c)
	if err != nil {
		return fail(fmt.Errorf("FC shape: %w", err))
	}
	defer fcs.stop()
	tctx, stopTimer := context.WithCancel(ctx)
	defer stopTimer()
	go c.FC().Timer(tctx, workerFunction, "drain", "drain", time.Minute) // as s.yaml's, the safety net
	fcLat, err := paced(ctx, client, fcs.intake, orders[o.latencyOrders:2*o.latencyOrders], o.latencyRate, done, timeout)
	if err != nil {
		return fail(fmt.Errorf("FC shape: %w", err))
	}
	paceWakeups := len(c.FC().Invocations())
	burstLat, err := paced(ctx, client, fcs.intake, orders[2*o.latencyOrders:], 0, done, timeout)
	if err != nil {
		return fail(fmt.Errorf("FC shape, burst: %w", err))
	}
	burstWakeups := len(c.FC().Invocations()) - paceWakeups
	failed := 0
	for _, inv := range c.FC().Invocations() {
		if inv.Done && !inv.Succeeded {
			failed++
		}
	}
	logf("order latency: dev p50 %v p99 %v max %v; FC p50 %v p99 %v max %v; FC wake-ups %d for %d paced orders, %d for a burst of %d (its p99 %v), %d failed",
		percentile(devLat, .5), percentile(devLat, .99), percentile(devLat, 1), percentile(fcLat, .5), percentile(fcLat, .99), percentile(fcLat, 1),
		paceWakeups, o.latencyOrders, burstWakeups, o.latencyBurst, percentile(burstLat, .99), failed)

	row := func(what string, p float64, goals ...Goal) Row {
		return Row{Figure: "order latency " + what + ", FC shape (intake wakes the worker function through FC), " + figure,
			Measured: ms(percentile(fcLat, p)), Baseline: ms(percentile(devLat, p)), Unit: "ms", BaselineOf: "dev shape: consumer", Goals: goals}
	}
	return []Row{
		row("p50", .5),
		row("p99", .99, AtMost(1000, "ms")),
		row("max", 1),
		{Figure: fmt.Sprintf("FC shape wake-ups for %d orders POSTed at once", o.latencyBurst), Measured: float64(burstWakeups), Unit: "count",
			Goals: []Goal{AtMost(float64(o.latencyBurst-1), "count")}},
	}
}

// devShape starts the buy binary as xnum dev runs it: routes and the
// JetStream consumer in one process.
func devShape(ctx context.Context, bin string, env []string) (*latencyShape, error) {
	p, err := start(bin, env)
	if err != nil {
		return nil, err
	}
	s := &latencyShape{name: "dev", intake: p.URL, procs: []*proc{p}}
	if err := waitReady(ctx, p, ordersReady, 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// fcShape starts the buy binary twice, as s.yaml deploys it on FC: the
// worker (no consumer, registered with the emulator's FC as s.yaml
// configures xnum-buy-worker) and the intake that wakes it up.
func fcShape(ctx context.Context, bin string, env []string, c *cloud) (*latencyShape, error) {
	s := &latencyShape{name: "FC"}
	// FC's variables, as FC sets them in its instances: only then do the
	// binaries honour FC's contract.
	onFC := []string{"FC_REGION=" + fc.DefaultRegion, "FC_ACCOUNT_ID=" + fc.DefaultAccountID}
	worker, err := start(bin, append(slices.Concat(env, onFC), "FC_FUNCTION_NAME="+workerFunction, "XNUM_BUY_ROLE=worker", "XNUM_EVENT_TIMEOUT=110s"))
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, worker)
	if err := waitReady(ctx, worker, ordersReady, 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	if err := c.FC().Register(fc.Function{Name: workerFunction, URL: worker.URL, Concurrency: 1, Timeout: 120 * time.Second, Retries: 2, MemoryMB: 256}); err != nil {
		s.stop()
		return nil, err
	}
	intake, err := start(bin, append(slices.Concat(env, onFC), "FC_FUNCTION_NAME=xnum-buy", "XNUM_BUY_ROLE=intake",
		"XNUM_BUY_WORKER_FUNCTION="+workerFunction, "XNUM_FC_ENDPOINT="+c.URL))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.procs = append(s.procs, intake)
	s.intake = intake.URL
	if err := waitReady(ctx, intake, ordersReady, 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// ordersReady is an answer of buy's routes that buys nothing.
var ordersReady = probe{Method: http.MethodGet, Path: "/orders/not-an-order", Status: http.StatusNotFound}

// paced POSTs orders to base, rate a second (0: all at once), and returns
// each one's time from its POST to its order.completed.
func paced(ctx context.Context, client *http.Client, base string, orders []events.OrderRequested, rate float64, done *completions, timeout time.Duration) ([]time.Duration, error) {
	started := make(map[string]time.Time, len(orders))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(orders))
	t0 := time.Now()
	for i, ord := range orders {
		if rate > 0 {
			if d := time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		body, _ := json.Marshal(ord)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			started[ord.OrderID] = time.Now()
			mu.Unlock()
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("POST /orders answered %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	ids := make([]string, len(orders))
	for i, ord := range orders {
		ids[i] = ord.OrderID
	}
	ds, err := done.wait(ids, started, timeout)
	slices.Sort(ds)
	return ds, err
}
