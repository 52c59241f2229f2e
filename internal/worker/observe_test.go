package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func newRecorder() *recorder { return &recorder{counts: map[string]int{}} }

func (r *recorder) add(key string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[key] += n
}

func (r *recorder) Delivery(_ context.Context, result string, took time.Duration) {
	if took <= 0 {
		result = "non-positive duration"
	}
	r.add("delivery/"+result, 1)
}
func (r *recorder) Buy(_ context.Context, outcome string, kind provider.Kind) {
	r.add("buy/"+outcome+"/"+string(kind), 1)
}
func (r *recorder) Order(_ context.Context, outcome string, age time.Duration) {
	if age < 0 {
		outcome = "negative age"
	}
	r.add("order/"+outcome, 1)
}
func (r *recorder) Redriven(_ context.Context, n int) { r.add("redriven", n) }

func (r *recorder) get() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, got[k], v, got)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: told %s %d times, want never (all: %v)", what, k, v, got)
		}
	}
}

// The Observer is told each delivery, buy and order outcome once, as the
// worker's own counters count them.
func TestObserverIsToldWhatHappens(t *testing.T) {
	e := buytest.New(t)
	rec := newRecorder()
	w := e.Worker("w", worker.WithObserver(rec))

	buytest.Handle(t, w, buytest.Body(t, buytest.Order("obs-ok", 2)))
	e.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
	buytest.Handle(t, w, buytest.Body(t, buytest.Order("obs-refused", 1)))
	e.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	buytest.Handle(t, w, buytest.Body(t, buytest.Order("obs-doubt", 1)))
	e.Faults.Set("BuySecretNo", fault.Fault{})
	buytest.Handle(t, w, []byte(`{"orderId":"obs-bad","quantity":0}`))

	sameCounts(t, "observer", rec.get(), map[string]int{
		"delivery/ack": 4,
		"buy/bought/":  2,
		"buy/refused/" + string(provider.ErrInsufficientInventory): 1,
		"buy/in_doubt/" + string(provider.ErrInDoubt):              1,
		"order/completed": 1,
		"order/failed":    2, // refused, and the invalid order
		"order/in_doubt":  1,
	})
	st := w.Stats()
	if st.Messages != 4 || st.Bought != 2 || st.Refused != 1 || st.Completed != 1 || st.Failed != 2 || st.InDoubt != 1 {
		t.Errorf("worker stats %+v disagree with the observer", st)
	}
}

// A buy whose answer comes after another delivery put its order in doubt
// settles the doubt: the observer of the worker that made the buy is told
// the order was settled, and that it was published again.
func TestObserverIsToldOfALateSettlement(t *testing.T) {
	e := buytest.New(t)
	rec := newRecorder()
	held := heldBuyer{Purchaser: e.Aliyun, bought: make(chan struct{}), letGo: make(chan struct{})}
	slow := e.WorkerBuying(held, "slow", worker.WithLease(200*time.Millisecond), worker.WithObserver(rec))
	b := buytest.Body(t, buytest.Order("obs-late", 1))
	done := make(chan error, 1)
	go func() { done <- slow.HandleOrder(context.Background(), b) }()
	<-held.bought
	time.Sleep(300 * time.Millisecond) // the slow worker's lease lapses
	if err := e.Worker("other").HandleOrder(buytest.Ctx(t), b); err != nil {
		t.Fatal(err)
	}
	if o, _ := e.Ledger.Get(buytest.Ctx(t), "obs-late"); o.Status != ledger.StatusInDoubt {
		t.Fatalf("order %s, want in doubt", o.Status)
	}
	close(held.letGo)
	if err := <-done; err != nil {
		t.Logf("slow worker: %v", err)
	}
	got := rec.get()
	if got["order/settled"] != 1 || got["buy/bought/"] != 1 || got["redriven"] != 1 {
		t.Errorf("observer of the late worker: %v; want one buy bought, one order settled, one redriven", got)
	}
}

// The worker's log lines of an order share the trace of the message (its
// traceparent extension) and, without a request id of their own, the
// request id it carries; the events it publishes carry the trace on.
func TestWorkerContinuesTheMessagesTrace(t *testing.T) {
	e := buytest.New(t)
	logs := &testutil.SyncBuffer{}
	w := e.Worker("w", worker.WithLogger(logging.New(logs, logging.Options{Level: slog.LevelDebug})))
	parent := traceparent.New()
	ev, err := events.New(events.SourceIntake, time.Now(), buytest.Order("traced-1", 2))
	if err != nil {
		t.Fatal(err)
	}
	ev.TraceParent, ev.RequestID = parent.String(), "req-intake-1"
	body, _ := json.Marshal(ev)
	buytest.Handle(t, w, body)

	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["orderId"] != "traced-1" {
			continue
		}
		lines++
		if m[logging.TraceIDKey] != parent.TraceIDString() || m[logging.SpanIDKey] == parent.SpanIDString() || m[logging.RequestIDKey] != "req-intake-1" {
			t.Errorf("log line %s: want trace %s in a span of its own and request id req-intake-1", l, parent.TraceIDString())
		}
	}
	if lines < 2 {
		t.Fatalf("%d log lines of the order:\n%s", lines, logs.String())
	}
	published := append(e.StreamEvents(events.SubjectNumberPurchased), e.StreamEvents(events.SubjectOrderCompleted)...)
	if len(published) != 3 {
		t.Fatalf("%d events published, want 3", len(published))
	}
	for _, p := range published {
		tc, err := traceparent.Parse(p.TraceParent)
		if err != nil || tc.TraceID != parent.TraceID || p.RequestID != "req-intake-1" {
			t.Errorf("event %s: traceparent %q, requestid %q; want the order's trace and request id", p.ID, p.TraceParent, p.RequestID)
		}
	}

	// An invocation's own request id stays on its lines; a message without
	// a trace gets one of its own.
	logs = &testutil.SyncBuffer{}
	w = e.Worker("w2", worker.WithLogger(logging.New(logs, logging.Options{Level: slog.LevelDebug})))
	ctx := logging.WithRequestID(buytest.Ctx(t), "fc-invocation-1")
	if err := w.HandleOrder(ctx, buytest.Body(t, buytest.Order("traced-2", 1))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"requestId":"fc-invocation-1"`) || strings.Contains(logs.String(), "req-intake-1") ||
		!strings.Contains(logs.String(), `"traceId":"`) {
		t.Errorf("lines of an invocation: want its request id and a trace id:\n%s", logs.String())
	}
}
