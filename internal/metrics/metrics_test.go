package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/metrics/metricstest"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Metrics observes the worker and the reconciler with the outcome names the
// worker uses.
var _ worker.Observer = (*metrics.Metrics)(nil)

func TestOutcomeNamesAreTheWorkers(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  []string
	}{
		{metrics.OrderOutcomes, []string{worker.Completed, worker.Failed, worker.InDoubt, worker.Settled}},
		{metrics.BuyOutcomes, []string{worker.Bought, worker.Refused, worker.InDoubt}},
		{metrics.DeliveryResults, []string{worker.Acked, worker.Retried, worker.Terminated, worker.Aborted}},
	} {
		if fmt.Sprint(c.names) != fmt.Sprint(c.want) {
			t.Errorf("label values %v, the worker's %v", c.names, c.want)
		}
	}
}

func scrape(t *testing.T, m *metrics.Metrics) metricstest.Samples {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	return metricstest.Scrape(t, srv.URL)
}

// record makes one invocation's worth of observations on ctx.
func record(ctx context.Context, m *metrics.Metrics) {
	m.Delivery(ctx, worker.Acked, 30*time.Millisecond)
	m.Buy(ctx, worker.Bought, "")
	m.Buy(ctx, worker.Refused, provider.ErrThrottled)
	m.Buy(ctx, worker.InDoubt, provider.ErrInDoubt)
	m.Order(ctx, worker.Completed, 2*time.Second)
	m.Order(ctx, worker.InDoubt, time.Second)
	m.Redriven(ctx, 2)
	m.ObserveCall(ctx, provider.Call{Provider: "aliyun", Action: "BuySecretNo", Code: "OK", Took: 20 * time.Millisecond})
	m.ObserveCall(ctx, provider.Call{Provider: "aliyun", Action: "BuySecretNo", Code: "OK", Took: 40 * time.Millisecond})
	m.ObserveCall(ctx, provider.Call{Provider: "aliyun", Action: "BuySecretNo", Code: "Throttling.User", Took: 5 * time.Millisecond})
}

func TestPrometheusInstruments(t *testing.T) {
	m := metrics.New()
	record(context.Background(), m)
	got := scrape(t, m)
	for _, c := range []struct {
		key  string
		want float64
	}{
		{`xnum_orders_total{outcome="completed"}`, 1},
		{`xnum_orders_total{outcome="in_doubt"}`, 1},
		{`xnum_orders_total{outcome="failed"}`, 0},
		{`xnum_orders_total{outcome="settled"}`, 0},
		{`xnum_buys_total{outcome="bought"}`, 1},
		{`xnum_buys_total{outcome="refused"}`, 1},
		{`xnum_buys_total{outcome="in_doubt"}`, 1},
		{`xnum_buy_refusals_total{kind="Throttled"}`, 1},
		{`xnum_buy_refusals_total{kind="Unauthorized"}`, 0},
		{`xnum_orders_redriven_total`, 2},
		{`xnum_provider_requests_total{action="BuySecretNo",code="OK",provider="aliyun"}`, 2},
		{`xnum_provider_requests_total{action="BuySecretNo",code="Throttling.User",provider="aliyun"}`, 1},
		{`xnum_provider_request_duration_seconds_count{action="BuySecretNo",provider="aliyun"}`, 3},
		{`xnum_worker_message_duration_seconds_count{result="ack"}`, 1},
		{`xnum_order_duration_seconds_count{outcome="completed"}`, 1},
		{`xnum_order_duration_seconds_sum{outcome="completed"}`, 2},
	} {
		if v, ok := got[c.key]; !ok || v != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.key, v, ok, c.want)
		}
	}
	// No ledger is watched: no gauge of it, not even xnum_ledger_up.
	for _, name := range []string{"xnum_orders_open", "xnum_ledger_up", "xnum_consumer_pending_messages"} {
		if got.Has(name) {
			t.Errorf("%s is served by a process without a ledger", name)
		}
	}
	if !got.Has("go_goroutines") || !got.Has("process_cpu_seconds_total") {
		t.Error("the Go and process collectors are missing")
	}
}

// A cloud answering codes without end grows the registry only so far, and
// a code that is no label is not one.
func TestProviderCodesBounded(t *testing.T) {
	m := metrics.New()
	m.ObserveCall(context.Background(), provider.Call{Provider: "aliyun", Action: "QuerySecretNoRemain", Code: "<html> page"})
	for i := range 400 {
		m.ObserveCall(context.Background(), provider.Call{Provider: "aliyun", Action: "BuySecretNo", Code: fmt.Sprintf("isv.CODE_%d", i)})
	}
	got := scrape(t, m)
	series := 0
	for k := range got {
		if strings.HasPrefix(k, "xnum_provider_requests_total{") {
			series++
		}
	}
	if series != 257 { // 256 label sets, and "other"
		t.Errorf("%d provider request series, want them bounded", series)
	}
	if v, _ := got.Get("xnum_provider_requests_total", "provider", "aliyun", "action", "BuySecretNo", "code", "other"); v != 400-255 {
		t.Errorf("codes past the bound counted as other: %v, want %d", v, 400-255)
	}
	if v, _ := got.Get("xnum_provider_requests_total", "provider", "aliyun", "action", "QuerySecretNoRemain", "code", "invalid"); v != 1 {
		t.Errorf("a code that is no label: %v", v)
	}
}

func TestStateGauges(t *testing.T) {
	m := metrics.New()
	var fail atomic.Bool
	reads := atomic.Int64{}
	m.WatchState(func(context.Context) (metrics.State, error) {
		reads.Add(1)
		if fail.Load() {
			return metrics.State{}, errors.New("NATS is away")
		}
		return metrics.State{Open: map[string]int{"accepted": 2, "in_doubt": 1}, Oldest: 90 * time.Second, Pending: 5, AckPending: 3}, nil
	})
	got := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"xnum_ledger_up", nil, 1},
		{"xnum_orders_open", []string{"status", "accepted"}, 2},
		{"xnum_orders_open", []string{"status", "processing"}, 0},
		{"xnum_orders_open", []string{"status", "in_doubt"}, 1},
		{"xnum_order_oldest_open_seconds", nil, 90},
		{"xnum_consumer_pending_messages", nil, 5},
		{"xnum_consumer_ack_pending_messages", nil, 3},
	} {
		if v, ok := got.Get(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s = %v (present %v), want %v", metricstest.Key(c.name, c.labels...), v, ok, c.want)
		}
	}
	// Scrapes close together share one read.
	scrape(t, m)
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads for two scrapes in a row, want 1", n)
	}
	// A failed read says so, and shows no stale figure.
	fail.Store(true)
	m.WatchState(func(ctx context.Context) (metrics.State, error) { return metrics.State{}, errors.New("NATS is away") })
	got = scrape(t, m)
	if v, _ := got.Get("xnum_ledger_up"); v != 0 || got.Has("xnum_orders_open") {
		t.Errorf("after a failed read: up %v, open orders shown %v", v, got.Has("xnum_orders_open"))
	}
}

func invocation(m *metrics.Metrics, emit metrics.Emit) (context.Context, func()) {
	ctx := logging.WithRequestID(context.Background(), "fc-req-1")
	return m.Invocations(emit)(ctx)
}

func TestFCLine(t *testing.T) {
	m := metrics.New()
	var out bytes.Buffer
	ctx, done := invocation(m, metrics.FCLine(&out, "buy"))
	record(ctx, m)
	record(context.Background(), m) // another invocation's, or none's: not in this line
	m.ObserveState(ctx, metrics.State{Open: map[string]int{"in_doubt": 1}, Oldest: time.Minute, Pending: 4})
	done()

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want one per invocation:\n%s", len(lines), out.String())
	}
	var line struct {
		Msg        string                        `json:"msg"`
		Function   string                        `json:"function"`
		RequestID  string                        `json:"requestId"`
		DurationMs *float64                      `json:"durationMs"`
		Orders     map[string]int                `json:"xnum_orders_total"`
		Buys       map[string]int                `json:"xnum_buys_total"`
		Refusals   map[string]int                `json:"xnum_buy_refusals_total"`
		Redriven   int                           `json:"xnum_orders_redriven_total"`
		Messages   int                           `json:"xnum_worker_messages"`
		Requests   map[string]int                `json:"xnum_provider_requests_total"`
		Seconds    map[string]float64            `json:"xnum_provider_request_duration_seconds_sum"`
		Open       map[string]int                `json:"xnum_orders_open"`
		Oldest     float64                       `json:"xnum_order_oldest_open_seconds"`
		Pending    int                           `json:"xnum_consumer_pending_messages"`
		Other      map[string]map[string]float64 `json:"-"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("%s: %v", lines[0], err)
	}
	want := fmt.Sprint(map[string]int{"completed": 1, "failed": 0, "in_doubt": 1, "settled": 0})
	if line.Msg != metrics.FCLineMsg || line.Function != "buy" || line.RequestID != "fc-req-1" || line.DurationMs == nil ||
		fmt.Sprint(line.Orders) != want || line.Buys["bought"] != 1 || line.Buys["refused"] != 1 || line.Buys["in_doubt"] != 1 ||
		line.Refusals["Throttled"] != 1 || line.Refusals["NotFound"] != 0 || line.Redriven != 2 || line.Messages != 1 ||
		line.Requests["aliyun/BuySecretNo/OK"] != 2 || line.Requests["aliyun/BuySecretNo/Throttling.User"] != 1 ||
		line.Seconds["aliyun/BuySecretNo"] < 0.064 || line.Seconds["aliyun/BuySecretNo"] > 0.066 ||
		line.Open["in_doubt"] != 1 || line.Open["accepted"] != 0 || line.Oldest != 60 || line.Pending != 4 {
		t.Errorf("line %s", lines[0])
	}

	// An invocation that did nothing still says so, with every outcome 0.
	out.Reset()
	_, done = invocation(m, metrics.FCLine(&out, "remain"))
	done()
	if !strings.Contains(out.String(), `"xnum_orders_total":{"completed":0,"failed":0,"in_doubt":0,"settled":0}`) ||
		strings.Contains(out.String(), "xnum_orders_open") || strings.Contains(out.String(), "xnum_provider_requests_total") {
		t.Errorf("an empty invocation's line: %s", out.String())
	}
}

// emfDoc is a CloudWatch Embedded Metric Format document.
type emfDoc map[string]any

func (d emfDoc) check(t *testing.T) (names []string, dims [][]string) {
	t.Helper()
	aws, _ := d["_aws"].(map[string]any)
	if ts, ok := aws["Timestamp"].(float64); !ok || ts < 1e12 {
		t.Fatalf("EMF document without a millisecond Timestamp: %v", d)
	}
	directives, _ := aws["CloudWatchMetrics"].([]any)
	if len(directives) != 1 {
		t.Fatalf("%d metric directives: %v", len(directives), d)
	}
	dir := directives[0].(map[string]any)
	if dir["Namespace"] != metrics.EMFNamespace {
		t.Errorf("namespace %v", dir["Namespace"])
	}
	for _, set := range dir["Dimensions"].([]any) {
		var ds []string
		for _, name := range set.([]any) {
			if _, ok := d[name.(string)].(string); !ok {
				t.Errorf("dimension %v has no string value at the root: %v", name, d)
			}
			ds = append(ds, name.(string))
		}
		dims = append(dims, ds)
	}
	for _, m := range dir["Metrics"].([]any) {
		name := m.(map[string]any)["Name"].(string)
		switch v := d[name].(type) {
		case float64:
		case []any:
			if len(v) == 0 || len(v) > 100 {
				t.Errorf("metric %s has %d values", name, len(v))
			}
		default:
			t.Errorf("metric %s has no value at the root: %v", name, d)
		}
		names = append(names, name)
	}
	return names, dims
}

func TestEMF(t *testing.T) {
	m := metrics.New()
	var out bytes.Buffer
	ctx, done := invocation(m, metrics.EMF(&out, "buy"))
	record(ctx, m)
	done()
	var docs []emfDoc
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var d emfDoc
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		docs = append(docs, d)
	}
	if len(docs) != 3 {
		t.Fatalf("%d EMF lines, want the counts and one per provider action and code:\n%s", len(docs), out.String())
	}
	names, dims := docs[0].check(t)
	if fmt.Sprint(dims) != "[[function]]" || docs[0]["function"] != "buy" || docs[0][logging.RequestIDKey] != "fc-req-1" {
		t.Errorf("first document's dimensions %v: %v", dims, docs[0])
	}
	for name, want := range map[string]float64{"orders_completed": 1, "orders_in_doubt": 1, "orders_settled": 0, "buys_bought": 1,
		"buys_refused": 1, "buys_in_doubt": 1, "buy_refusals_Throttled": 1, "orders_redriven": 2, "worker_messages": 1} {
		if docs[0][name] != want {
			t.Errorf("%s = %v, want %v", name, docs[0][name], want)
		}
	}
	if len(names) < 15 {
		t.Errorf("metrics of the first document: %v", names)
	}
	for i, code := range []string{"OK", "Throttling.User"} {
		d := docs[1+i]
		_, dims := d.check(t)
		if d["code"] != code || d["action"] != "BuySecretNo" || fmt.Sprint(dims) != "[[function provider action] [function provider action code]]" {
			t.Errorf("provider document %v, dimensions %v", d, dims)
		}
	}
	if n := len(docs[1]["provider_request_duration"].([]any)); n != 2 || docs[1]["provider_requests"] != 2.0 {
		t.Errorf("provider document of OK: %v", docs[1])
	}
}
