package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/metrics/metricstest"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

const pool = "FC100000000000001"

// order posts an order of qty numbers under id, with a traceparent when tp
// is set, and waits until it stops; it returns the stopped status.
func order(t *testing.T, s Stack, id string, qty int, tp string) string {
	t.Helper()
	hdr := []string{"Idempotency-Key", id}
	if tp != "" {
		hdr = append(hdr, "traceparent", tp)
	}
	if code, body := post(t, s.HTTPURL+"/orders", fmt.Sprintf(`{"poolKey":%q,"city":"杭州","specId":2,"quantity":%d}`, pool, qty), hdr...); code != 202 {
		t.Fatalf("POST order %s: %d %s", id, code, body)
	}
	return waitStopped(t, s, id)
}

func waitStopped(t *testing.T, s Stack, id string) string {
	t.Helper()
	var status string
	testutil.WaitFor(t, "order "+id+" to stop", func() bool {
		code, o := getOrder(t, s, id)
		status = o.Status
		return code == 200 && o.Status != "accepted" && o.Status != "processing"
	})
	return status
}

// waitMetric scrapes until ok holds for the samples, and returns them.
func waitMetric(t *testing.T, s Stack, what string, ok func(metricstest.Samples) bool) metricstest.Samples {
	t.Helper()
	var last metricstest.Samples
	testutil.WaitFor(t, what+" in /metrics", func() bool {
		last = metricstest.Scrape(t, s.HTTPURL+"/metrics")
		return ok(last)
	})
	return last
}

// The Done-when of issue 12: xnum dev serves /metrics, and every named
// metric moves as orders flow — orders and buys by outcome (a doubt settled
// by the cloud's number report among them), provider requests and their
// latency, the intake's and the worker's latency, the open orders from the
// ledger, the consumer's lag. TestInDoubtOpenInTheLedger shows the in-doubt
// and oldest-open gauges.
func TestMetricsMoveAsOrdersFlow(t *testing.T) {
	s := startWith(t, Config{})
	faults := s.Emulator.Faults()
	before := metricstest.Scrape(t, s.HTTPURL+"/metrics")
	for _, outcome := range []string{"completed", "failed", "in_doubt", "settled"} {
		if v, ok := before.Get("xnum_orders_total", "outcome", outcome); !ok || v != 0 {
			t.Errorf("before any order: xnum_orders_total{outcome=%q} = %v, %v; want a 0 series", outcome, v, ok)
		}
	}
	if v, ok := before.Get("xnum_orders_open", "status", "accepted"); !ok || v != 0 {
		t.Errorf("before any order: xnum_orders_open{accepted} = %v, %v", v, ok)
	}
	if v, _ := before.Get("xnum_ledger_up"); v != 1 {
		t.Errorf("xnum_ledger_up = %v, want 1", v)
	}

	// Completed: two numbers bought.
	if st := order(t, s, "m-ok", 2, ""); st != "completed" {
		t.Fatalf("m-ok %s", st)
	}
	// Failed: the buy is refused, nothing bought.
	faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
	if st := order(t, s, "m-refused", 1, ""); st != "failed" {
		t.Fatalf("m-refused %s", st)
	}
	// In doubt: the buy bought and its answer was lost; the emulator's
	// number report settles it (the settler beside the worker), and the
	// order completes.
	faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	if code, body := post(t, s.HTTPURL+"/orders", fmt.Sprintf(`{"poolKey":%q,"city":"杭州","specId":2,"quantity":1}`, pool), "Idempotency-Key", "m-doubt"); code != 202 {
		t.Fatalf("POST m-doubt: %d %s", code, body)
	}
	testutil.WaitFor(t, "m-doubt to go in doubt", func() bool {
		o, err := s.Buy.Ledger.Get(context.Background(), "m-doubt")
		return err == nil && (o.Status == "in_doubt" || len(o.Settlements) > 0)
	})
	faults.Set("BuySecretNo", fault.Fault{})
	testutil.WaitFor(t, "m-doubt settled from its report and completed", func() bool {
		_, o := getOrder(t, s, "m-doubt")
		return o.Status == "completed"
	})

	after := waitMetric(t, s, "the ledger with no open order", func(m metricstest.Samples) bool {
		v, _ := m.Get("xnum_orders_open", "status", "in_doubt")
		return v == 0
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"xnum_orders_total", []string{"outcome", "completed"}, 2},
		{"xnum_orders_total", []string{"outcome", "failed"}, 1},
		{"xnum_orders_total", []string{"outcome", "in_doubt"}, 1},
		{"xnum_orders_total", []string{"outcome", "settled"}, 1},
		{"xnum_buys_total", []string{"outcome", "bought"}, 2},
		{"xnum_buys_total", []string{"outcome", "refused"}, 1},
		{"xnum_buys_total", []string{"outcome", "in_doubt"}, 1},
		{"xnum_buy_refusals_total", []string{"kind", "InsufficientInventory"}, 1},
		{"xnum_provider_requests_total", []string{"provider", "aliyun", "action", "BuySecretNo", "code", "OK"}, 2},
		{"xnum_provider_requests_total", []string{"provider", "aliyun", "action", "BuySecretNo", "code", "isv.NO_AVAILABLE_NUMBER"}, 1},
		{"xnum_provider_requests_total", []string{"provider", "aliyun", "action", "BuySecretNo", "code", "InDoubt"}, 1},
		{"xnum_provider_requests_total", []string{"provider", "aliyun", "action", "QuerySecretNoRemain", "code", "OK"}, 3}, // the settled order needs no more
		{"xnum_provider_request_duration_seconds_count", []string{"provider", "aliyun", "action", "BuySecretNo"}, 4},
		{"xnum_intake_request_duration_seconds_count", []string{"method", "POST", "code", "202"}, 3},
		{"xnum_order_duration_seconds_count", []string{"outcome", "completed"}, 2},
		{"xnum_orders_open", []string{"status", "accepted"}, 0},
		{"xnum_orders_open", []string{"status", "processing"}, 0},
		{"xnum_order_oldest_open_seconds", nil, 0},
	} {
		if v, ok := after.Get(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s = %v (present %v), want %v", metricstest.Key(c.name, c.labels...), v, ok, c.want)
		}
	}
	if v, _ := after.Get("xnum_worker_message_duration_seconds_count", "result", "ack"); v < 4 {
		t.Errorf("xnum_worker_message_duration_seconds_count{ack} = %v, want at least the 4 deliveries", v)
	}
	if v, _ := after.Get("xnum_intake_request_duration_seconds_count", "method", "GET", "code", "200"); v < 1 {
		t.Errorf("GET /orders/{id} not timed: %v", v)
	}

	// The consumer's lag: with every buy slow, orders wait to be delivered
	// (pending) and delivered ones wait for their ack; then both drain.
	faults.Set("BuySecretNo", fault.Fault{Latency: time.Second})
	for i := range 14 {
		id := fmt.Sprintf("m-lag-%d", i)
		if code, body := post(t, s.HTTPURL+"/orders", fmt.Sprintf(`{"poolKey":%q,"city":"杭州","specId":2,"quantity":1}`, pool), "Idempotency-Key", id); code != 202 {
			t.Fatalf("POST %s: %d %s", id, code, body)
		}
	}
	waitMetric(t, s, "the consumer lagging", func(m metricstest.Samples) bool {
		pending, _ := m.Get("xnum_consumer_pending_messages")
		ack, _ := m.Get("xnum_consumer_ack_pending_messages")
		open, _ := m.Get("xnum_orders_open", "status", "accepted")
		return pending > 0 && ack > 0 && open > 0
	})
	faults.Set("BuySecretNo", fault.Fault{})
	waitMetric(t, s, "the consumer caught up", func(m metricstest.Samples) bool {
		pending, _ := m.Get("xnum_consumer_pending_messages")
		ack, _ := m.Get("xnum_consumer_ack_pending_messages")
		done, _ := m.Get("xnum_orders_total", "outcome", "completed")
		return pending == 0 && ack == 0 && done == 2+14
	})
}

// An order in doubt that no report settles is open in the ledger's gauges,
// and the oldest open order has an age, until an operator settles it; the
// settlement counts as settled.
func TestInDoubtOpenInTheLedger(t *testing.T) {
	s := startWith(t, Config{ReportsDelay: -1}) // the report is lost
	s.Emulator.Faults().Set("BuySecretNo", fault.Fault{CutRate: 1})
	if st := order(t, s, "m-doubt", 1, ""); st != "in_doubt" {
		t.Fatalf("m-doubt %s", st)
	}
	s.Emulator.Faults().Set("BuySecretNo", fault.Fault{})
	doubt := waitMetric(t, s, "the order in doubt open in the ledger", func(m metricstest.Samples) bool {
		v, _ := m.Get("xnum_orders_open", "status", "in_doubt")
		return v == 1
	})
	if v, _ := doubt.Get("xnum_order_oldest_open_seconds"); v <= 0 {
		t.Errorf("xnum_order_oldest_open_seconds = %v with an order in doubt, want > 0", v)
	}

	// An operator names the number the attempt bought; a reconcile run
	// in this process counts its settlement.
	ali, err := aliyun.New(aliyun.Config{AccessKeyID: emulator.DefaultAccessKeyID, AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint: s.EmulatorURL})
	if err != nil {
		t.Fatal(err)
	}
	rec := reconcile.New(s.Buy.Ledger, ali, redrive.New(s.Buy.Ledger, s.Buy.Queue.Publisher()), reconcile.WithObserver(s.Metrics))
	sold := s.Emulator.Dypls().Purchases()
	if _, err := rec.Bought(context.Background(), "m-doubt", sold[len(sold)-1].SecretNo, "test"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, s, "the order out of doubt and completed", func(m metricstest.Samples) bool {
		open, _ := m.Get("xnum_orders_open", "status", "in_doubt")
		oldest, _ := m.Get("xnum_order_oldest_open_seconds")
		settled, _ := m.Get("xnum_orders_total", "outcome", "settled")
		done, _ := m.Get("xnum_orders_total", "outcome", "completed")
		return open == 0 && oldest == 0 && settled == 1 && done == 1
	})
}

// /healthz and /readyz answer on xnum dev's address.
func TestHealthAndReadiness(t *testing.T) {
	s := start(t, "")
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// An order's log lines — the intake's and the worker's — share the trace
// id of the traceparent the HTTP request came with.
func TestOrderLogLinesShareATrace(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	s := startWith(t, Config{Logger: logging.New(logs, logging.Options{Level: slog.LevelDebug, Function: "xnum-dev"})})
	parent := traceparent.New()
	if st := order(t, s, "traced-1", 2, parent.String()); st != "completed" {
		t.Fatalf("traced-1 %s", st)
	}
	var intakeLines, workerLines int
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["orderId"] != "traced-1" {
			continue
		}
		if m[logging.TraceIDKey] != parent.TraceIDString() {
			t.Errorf("a line of the order is not in its trace %s: %s", parent.TraceIDString(), l)
		}
		if _, ok := m["worker"]; ok {
			workerLines++
		} else {
			intakeLines++
		}
	}
	if intakeLines == 0 || workerLines == 0 {
		t.Fatalf("%d intake and %d worker lines of the order:\n%s", intakeLines, workerLines, logs.String())
	}
}
