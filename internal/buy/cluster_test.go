package buy_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// soak makes the long runs longer (XNUM_SOAK=1).
func soak() bool { return os.Getenv("XNUM_SOAK") == "1" }

// instance runs one buy function on NATS at url as the functions/buy binary
// does off FC — its own connection, the routes on a loopback port and the
// consumer in the background — until the test ends; its log is shown if
// the test fails.
func instance(t *testing.T, url string, emu *emulatortest.Server, cfg buy.Config) *buy.Function {
	t.Helper()
	nc, js := testutil.JetStream(t, url)
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of an instance:\n%s", logs)
		}
	})
	cfg.Consumer = true
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fn, err := buy.New(context.Background(), js, emu.Aliyun(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return function.Serve(ctx, fn.Function, function.WithListener(ln), function.WithNATS(nc),
			function.WithLogger(cfg.Logger), function.WithLookup(func(string) (string, bool) { return "", false }))
	})
	return fn
}

// publishOrder puts an order for specId 2 numbers on the queue as other
// systems do, retrying through an election (the Nats-Msg-Id makes a retry
// harmless).
//
// The tests publish rather than POST: an order that the intake marks
// published just after a worker claimed it waits for the claim's lease to
// lapse (the worker's rerun takes its own claim for another's), which would
// slow these runs down without testing anything of theirs.
func publishOrder(ctx context.Context, t *testing.T, pub *queue.Publisher, id, city string, qty int) bool {
	t.Helper()
	ev, err := events.New("test", time.Now(), events.OrderRequested{OrderID: id, PoolKey: "FC100000000000001", City: city, SpecID: 2, Quantity: qty})
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		if _, err = pub.PublishEvent(ctx, ev); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("order %s not published: %v", id, err)
	return false
}

// waitEnded waits until the ledger holds want orders and none is still
// accepted or processing, and returns them.
func waitEnded(ctx context.Context, t *testing.T, l *ledger.Ledger, want int) []*ledger.Order {
	t.Helper()
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		orders, err := l.List(lctx)
		cancel()
		open := 0
		for _, o := range orders {
			if !o.Status.Stopped() {
				open++
			}
		}
		if err == nil && open == 0 && len(orders) >= want {
			return orders
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d orders (%d expected) still open (%v)", open, len(orders), want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three buy functions on a three-server cluster, set up by its operator
// (xnum setup --replicas 3), buy orders while the leader of the stream and
// then the leader of the ledger are shut down and restarted. Every order
// ends; no number is in two orders; the emulator sold what the ledger
// recorded, plus at most one number per order in doubt.
//
// The workers' lease and delays and the consumer's ack wait (a delivery
// lost while the servers re-form their routes comes back after it) are
// shorter than in production, so that the run recovers in seconds; the
// invariants do not depend on them.
func TestLeadersShutDownMidRun(t *testing.T) {
	c := embednats.RunTestCluster(t, 3)
	emu := emulatortest.NewServer(t, emulator.WithFault("BuySecretNo", fault.Fault{Latency: 5 * time.Millisecond}))
	run := 3 * time.Second
	if soak() {
		run = 30 * time.Second
	}
	// Two clients send an order of one or two numbers every 100 ms each:
	// any city has enough for all of them.
	cities := emu.Stock(t, "Cluster", 4, int(run.Seconds()*40)+20)
	ctx, cancel := context.WithTimeout(context.Background(), run+120*time.Second)
	defer cancel()

	_, js := testutil.JetStream(t, c.ClientURL())
	plan, err := queue.PlanSetup(ctx, js, queue.WithReplicas(3), queue.WithAckWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		instance(t, c.ClientURL(), emu, buy.Config{QPS: 50, Worker: []worker.Option{
			worker.WithLease(5 * time.Second), worker.WithNakDelay(time.Second), worker.WithPullExpiry(2 * time.Second)}})
	}
	pub := queue.NewPublisher(js, queue.WithPublishRetry(5, 100*time.Millisecond), queue.WithPublishTimeout(2*time.Second))

	var (
		mu       sync.Mutex
		accepted = map[string]int{} // order id -> quantity
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	start := time.Now()
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 11))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				id, qty := fmt.Sprintf("chaos-%d-%d", p, n), 1+rng.IntN(2)
				if publishOrder(ctx, t, pub, id, cities[rng.IntN(len(cities))], qty) {
					mu.Lock()
					accepted[id] = qty
					mu.Unlock()
				}
			}
		}()
	}

	// The stream's leader, then the ledger's, go away for a while, as in a
	// rolling restart: the next goes once the cluster is whole again.
	for _, stream := range []string{queue.StreamName, "KV_" + queue.LedgerBucket} {
		time.Sleep(run / 4)
		var leader *embednats.Server
		for leader == nil {
			if ctx.Err() != nil {
				t.Fatalf("no leader of %s", stream)
			}
			if leader = c.StreamLeader(stream); leader == nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		leader.Shutdown()
		t.Logf("%v: %s, the leader of %s, shut down", time.Since(start).Round(time.Millisecond), leader.Name(), stream)
		time.Sleep(run / 6)
		if err := leader.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: %s restarted, the cluster whole again", time.Since(start).Round(time.Millisecond), leader.Name())
	}
	time.Sleep(run / 4)
	close(stop)
	wg.Wait()

	// A request sent while the servers re-form their routes may get no
	// answer: each try has a timeout of its own.
	var kv jetstream.KeyValue
	for kv == nil {
		kctx, kcancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err = js.KeyValue(kctx, queue.LedgerBucket)
		kcancel()
		if ctx.Err() != nil {
			t.Fatalf("the ledger: %v", err)
		}
	}
	orders := waitEnded(ctx, t, ledger.New(kv), len(accepted))
	byStatus := map[ledger.Status]int{}
	holder := map[string]string{} // number -> order
	recorded := 0
	for _, o := range orders {
		byStatus[o.Status]++
		if want, ok := accepted[o.OrderID]; !ok || o.Quantity != want {
			t.Errorf("order %s in the ledger: published %v, quantity %d", o.OrderID, ok, o.Quantity)
		}
		if o.Error != nil {
			t.Logf("order %s %s: %s: %s", o.OrderID, o.Status, o.Error.Code, o.Error.Message)
		}
		if o.Status == ledger.StatusCompleted && len(o.Numbers) != o.Quantity {
			t.Errorf("order %s completed with %d of %d numbers", o.OrderID, len(o.Numbers), o.Quantity)
		}
		for _, n := range o.Numbers {
			if other, dup := holder[n.SecretNo]; dup {
				t.Errorf("number %s in orders %s and %s", n.SecretNo, other, o.OrderID)
			}
			holder[n.SecretNo] = o.OrderID
			recorded++
		}
	}
	sold := map[string]bool{}
	for _, p := range emu.Dypls().Purchases() {
		sold[p.SecretNo] = true
	}
	for no, id := range holder {
		if !sold[no] {
			t.Errorf("order %s holds %s, which was never sold", id, no)
		}
	}
	inDoubt := byStatus[ledger.StatusInDoubt]
	if extra := len(sold) - recorded; extra < 0 || extra > inDoubt {
		t.Errorf("sold %d, recorded %d: %d bought outside the ledger with %d orders in doubt", len(sold), recorded, extra, inDoubt)
	}
	if len(orders) != len(accepted) || len(accepted) == 0 {
		t.Errorf("%d orders published, %d in the ledger", len(accepted), len(orders))
	}
	var counts []string
	for _, s := range []ledger.Status{ledger.StatusCompleted, ledger.StatusFailed, ledger.StatusInDoubt} {
		counts = append(counts, fmt.Sprintf("%d %s", byStatus[s], s))
	}
	t.Logf("%d orders (%s), all ended %v after the first; %d numbers sold, %d recorded, 0 in two orders",
		len(orders), strings.Join(counts, ", "), time.Since(start).Round(time.Millisecond), len(sold), recorded)
}

// Three buy functions share XNUM_ALIYUN_BUY_QPS through JetStream: the
// emulator, limiting BuySecretNo to that rate, throttles none of their buys,
// and together they use at least 90 % of it.
func TestWorkersShareTheBuyRate(t *testing.T) {
	const qps = 10
	emu := emulatortest.NewServer(t, emulator.WithFault("BuySecretNo", fault.Fault{QPS: qps}))
	ns := embednats.RunTest(t)
	orders, perOrder := 10, 4
	if soak() {
		orders = 75
	}
	cities := emu.Stock(t, "Rate", orders, perOrder)
	var fns []*buy.Function
	for range 3 {
		fns = append(fns, instance(t, ns.ClientURL(), emu, buy.Config{QPS: qps}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	_, js := testutil.JetStream(t, ns.ClientURL())
	pub := queue.NewPublisher(js)
	for i, city := range cities {
		if !publishOrder(ctx, t, pub, fmt.Sprintf("rate-%d", i), city, perOrder) {
			t.FailNow()
		}
	}
	for _, o := range waitEnded(ctx, t, fns[0].Ledger, orders) {
		if o.Status != ledger.StatusCompleted {
			t.Fatalf("order %s %s", o.OrderID, o.Status)
		}
	}

	numbers := orders * perOrder
	sold := emu.Dypls().Purchases()
	calls := emu.Dypls().Calls("BuySecretNo")
	if len(sold) != numbers || calls != numbers {
		t.Fatalf("%d buy calls for %d numbers, %d sold: %d throttled", calls, numbers, len(sold), calls-len(sold))
	}
	span := sold[len(sold)-1].Time.Sub(sold[0].Time)
	rate := float64(len(sold)-1) / span.Seconds()
	if rate < 0.9*qps {
		t.Fatalf("%d buys in %v: %.2f/s, less than 90%% of %d/s", len(sold), span, rate, qps)
	}
	var each []string
	for i, fn := range fns {
		b := fn.Worker.Stats().Bought
		if b == 0 {
			t.Fatalf("instance %d bought nothing: nothing was shared", i+1)
		}
		each = append(each, fmt.Sprint(b))
	}
	t.Logf("3 workers bought %s: %d numbers in %v, %.2f/s of %d allowed (%.0f%%), 0 throttled",
		strings.Join(each, "+"), len(sold), span.Round(time.Millisecond), rate, qps, 100*rate/qps)
}
