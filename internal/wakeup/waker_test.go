package wakeup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider"
)

func order(id string) events.OrderRequested {
	return events.OrderRequested{OrderID: id, PoolKey: "FC100000000000001", City: "杭州", SpecID: provider.SpecCarrier, Quantity: 1}
}

// delivered decodes every payload the worker got and returns the order ids
// of each, checking that each is a wake-up carrying valid orders.
func delivered(t *testing.T, w *worker) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range w.got() {
		pl, ok := wakeup.Decode(p)
		if !ok {
			t.Fatalf("not a wake-up: %s", p)
		}
		var ids []string
		for _, raw := range pl.Orders {
			o, err := events.DecodeOrderRequested(raw)
			if err != nil || o.Validate() != nil {
				t.Fatalf("an order the worker cannot take: %s (%v)", raw, err)
			}
			ids = append(ids, o.OrderID)
		}
		out = append(out, ids)
	}
	return out
}

// gated holds every InvokeAsync until open is closed.
type gated struct {
	next  wakeup.Invoker
	open  chan struct{}
	calls chan struct{}
}

func (g *gated) InvokeAsync(ctx context.Context, fn string, payload []byte) (string, error) {
	g.calls <- struct{}{}
	<-g.open
	return g.next.InvokeAsync(ctx, fn, payload)
}

func TestLoneOrdersGoAtOnceEachAlone(t *testing.T) {
	c := newCloud(t, "w")
	w := wakeup.NewWaker(c.client(t, devKey), "w")
	for i := range 3 {
		w.Accepted(context.Background(), order(fmt.Sprint("lone-", i)))
	}
	// Accepted returned after each hand-over: three wake-ups, one order each.
	if st := w.Stats(); st.Invocations != 3 || st.Orders != 3 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	testutil.WaitFor(t, "three invocations", func() bool { return len(c.worker.got()) == 3 })
	got := delivered(t, c.worker)
	slices.SortFunc(got, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	if fmt.Sprint(got) != "[[lone-0] [lone-1] [lone-2]]" {
		t.Fatalf("delivered %v", got)
	}
}

// While one wake-up is in flight, the orders accepted meanwhile wait and go
// together in the next: a burst of 50 costs a few invocations, and every
// order is carried exactly once.
func TestBurstIsCoalesced(t *testing.T) {
	c := newCloud(t, "w")
	g := &gated{next: c.client(t, devKey), open: make(chan struct{}), calls: make(chan struct{}, 100)}
	w := wakeup.NewWaker(g, "w", wakeup.WithTimeout(time.Minute))

	var wg sync.WaitGroup
	accept := func(id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Accepted(context.Background(), order(id))
		}()
	}
	accept("burst-0")
	<-g.calls // the first wake-up is in flight, held
	for i := 1; i < 50; i++ {
		accept(fmt.Sprint("burst-", i))
	}
	close(g.open)
	wg.Wait()

	st := w.Stats()
	t.Logf("50 orders in %d wake-ups", st.Invocations)
	if st.Orders != 50 || st.Failures != 0 || st.Invocations > 10 {
		t.Fatalf("stats %+v: a burst of 50 must not cost an invocation each", st)
	}
	testutil.WaitFor(t, "every wake-up to run", func() bool { return int64(len(c.worker.got())) == st.Invocations })
	var all []string
	for _, ids := range delivered(t, c.worker) {
		all = append(all, ids...)
	}
	slices.Sort(all)
	if len(all) != 50 || len(slices.Compact(slices.Clone(all))) != 50 {
		t.Fatalf("%d orders delivered (%d distinct), want each of 50 once", len(all), len(slices.Compact(all)))
	}
}

func TestMaxOrdersPerWakeup(t *testing.T) {
	c := newCloud(t, "w")
	g := &gated{next: c.client(t, devKey), open: make(chan struct{}), calls: make(chan struct{}, 100)}
	w := wakeup.NewWaker(g, "w", wakeup.WithMaxOrders(10), wakeup.WithTimeout(time.Minute))
	var wg sync.WaitGroup
	for i := range 45 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Accepted(context.Background(), order(fmt.Sprint("max-", i)))
		}()
	}
	<-g.calls
	close(g.open)
	wg.Wait()
	testutil.WaitFor(t, "every wake-up to run", func() bool { return int64(len(c.worker.got())) == w.Stats().Invocations })
	n := 0
	for _, ids := range delivered(t, c.worker) {
		if len(ids) > 10 {
			t.Fatalf("a wake-up carried %d orders, over the 10 allowed", len(ids))
		}
		n += len(ids)
	}
	if n != 45 {
		t.Fatalf("%d orders delivered, want 45", n)
	}
}

// A failed wake-up returns, logs one line with its reason and orders, and
// leaves the next order to try again.
func TestFailedWakeupIsLoggedOnce(t *testing.T) {
	c := newCloud(t, "w")
	logs := &testutil.SyncBuffer{}
	w := wakeup.NewWaker(c.client(t, devKey), "not-deployed", wakeup.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	w.Accepted(context.Background(), order("lost-1"))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs)
	}
	var line struct {
		Level    string
		OrderIDs []string `json:"orderIds"`
		Reason   string
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Level != "WARN" || !slices.Equal(line.OrderIDs, []string{"lost-1"}) || !strings.Contains(line.Reason, "FunctionNotFound") {
		t.Fatalf("log line %s", lines[0])
	}
	if st := w.Stats(); st.Failures != 1 || st.Invocations != 1 {
		t.Fatalf("stats %+v", st)
	}
	if strings.Contains(logs.String(), devKey.AccessKeySecret) {
		t.Fatal("the log shows the secret")
	}
}

// A hand-over that hangs is given up after the timeout: the order's POST
// is not held longer.
func TestHungWakeupIsGivenUp(t *testing.T) {
	w := wakeup.NewWaker(hanging{}, "w", wakeup.WithTimeout(50*time.Millisecond))
	w.Accepted(context.Background(), order("hung-1"))
	if st := w.Stats(); st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// hanging is an Invoker that answers only when its context ends.
type hanging struct{}

func (h hanging) InvokeAsync(ctx context.Context, _ string, _ []byte) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}
