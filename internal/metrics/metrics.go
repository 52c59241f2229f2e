// Package metrics is xnum's instruments, on a Prometheus registry of their
// own (github.com/prometheus/client_golang):
//
//   - counters and histograms of what this process did: orders ended or
//     stopped (xnum_orders_total{outcome}), buys (xnum_buys_total{outcome},
//     xnum_buy_refusals_total{kind}), provider requests and their latency,
//     the intake's and the worker's latency, orders published again;
//   - gauges read at scrape time from the ledger and the order consumer
//     (State): open orders by status, the age of the oldest, the consumer's
//     lag. They are true across processes, however many workers there are.
//
// A Metrics observes the worker (worker.Observer), the provider clients
// (ObserveCall, a provider.CallObserver) and the intake (Intake), and gives
// its figures out three ways: Prometheus text on Handler for long-lived
// processes; one JSON line per FC invocation (FCLine); CloudWatch Embedded
// Metric Format lines per Lambda invocation (EMF). See invocation.go.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Label values of the outcome counters, all present from the start so that
// rates and alerts work before the first event. They are the strings the
// worker's Observer is told (worker.Bought, worker.Completed, …).
var (
	OrderOutcomes = []string{"completed", "failed", "in_doubt", "settled"}
	BuyOutcomes   = []string{"bought", "refused", "in_doubt"}
	// RefusalKinds are the kinds of a buy refused before the cloud acted
	// (the worker's "nothing bought" kinds).
	RefusalKinds = []string{
		string(provider.ErrThrottled), string(provider.ErrUnavailable), string(provider.ErrUnauthorized),
		string(provider.ErrInvalidParameter), string(provider.ErrNotFound), string(provider.ErrConflict),
		string(provider.ErrInsufficientInventory),
	}
	// DeliveryResults are what became of a message the worker processed.
	DeliveryResults = []string{"ack", "retry", "term", "abort"}
)

// Metrics holds the instruments. Build it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	orders     *prometheus.CounterVec
	buys       *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	redriven   prometheus.Counter
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
	intake     *prometheus.HistogramVec
	deliveries *prometheus.HistogramVec
	orderTime  *prometheus.HistogramVec

	state *stateCollector

	// callLabels bounds the label sets of provider requests: a cloud (or a
	// proxy in front of it) answering codes without end must not grow the
	// registry without end.
	callLabelsMu sync.Mutex
	callLabels   map[[3]string]bool
}

// maxCallLabels bounds the distinct provider/action/code label sets; past
// it a new code is counted as "other".
const maxCallLabels = 256

// New returns Metrics with every instrument registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xnum_orders_total",
			Help: "Orders this process ended (completed, failed), stopped in doubt (in_doubt), or took out of doubt (settled).",
		}, []string{"outcome"}),
		buys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xnum_buys_total",
			Help: "BuySecretNo calls this process made, by outcome: a number bought, refused before the cloud acted, or in doubt.",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xnum_buy_refusals_total",
			Help: "BuySecretNo calls refused before the cloud acted (nothing bought), by the kind of refusal (Throttled, ...).",
		}, []string{"kind"}),
		redriven: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xnum_orders_redriven_total",
			Help: "Open orders that nothing drove, published again for the workers.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xnum_provider_requests_total",
			Help: "Requests sent to a cloud, each retry too, by provider, action and the cloud's code (OK, or the outcome's kind when no code came back).",
		}, []string{"provider", "action", "code"}),
		callTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xnum_provider_request_duration_seconds",
			Help:    "Time from sending a request to a cloud to its answer or its end.",
			Buckets: prometheus.DefBuckets,
		}, []string{"provider", "action"}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xnum_intake_request_duration_seconds",
			Help:    "Time the order intake (POST /orders, GET /orders/{id}) took to answer, by method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "code"}),
		deliveries: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xnum_worker_message_duration_seconds",
			Help:    "Time the worker took over one order message, by what became of it (ack, retry, term, abort).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"result"}),
		orderTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xnum_order_duration_seconds",
			Help:    "Time from an order's acceptance to its end (completed, failed) or its stop in doubt (in_doubt).",
			Buckets: []float64{.1, .5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"outcome"}),
		state:      newStateCollector(),
		callLabels: map[[3]string]bool{},
	}
	m.reg.MustRegister(m.orders, m.buys, m.refusals, m.redriven, m.calls, m.callTime, m.intake, m.deliveries, m.orderTime, m.state)
	for _, o := range OrderOutcomes {
		m.orders.WithLabelValues(o)
		if o != "settled" {
			m.orderTime.WithLabelValues(o)
		}
	}
	for _, o := range BuyOutcomes {
		m.buys.WithLabelValues(o)
	}
	for _, k := range RefusalKinds {
		m.refusals.WithLabelValues(k)
	}
	for _, r := range DeliveryResults {
		m.deliveries.WithLabelValues(r)
	}
	return m
}

// Handler serves the registry in the Prometheus text format, with the Go
// runtime's and the process's figures (go_*, process_*) of the library's
// default registry, which registers them when it is loaded: making our own
// would cost a cold start another collector package (and database/sql). A
// failed ledger read is no error of the scrape: xnum_ledger_up says it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, prometheus.DefaultGatherer},
		promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry the instruments are on, for tests and for
// processes that add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Delivery records one message the worker processed (worker.Observer).
func (m *Metrics) Delivery(ctx context.Context, result string, took time.Duration) {
	m.deliveries.WithLabelValues(result).Observe(took.Seconds())
	invocationOf(ctx).count("messages", 1)
}

// Buy records one BuySecretNo call (worker.Observer).
func (m *Metrics) Buy(ctx context.Context, outcome string, kind provider.Kind) {
	m.buys.WithLabelValues(outcome).Inc()
	inv := invocationOf(ctx)
	inv.count(buysKey+outcome, 1)
	if outcome == "refused" {
		m.refusals.WithLabelValues(string(kind)).Inc()
		inv.count(refusalsKey+string(kind), 1)
	}
}

// Order records an order's end, stop in doubt or settlement
// (worker.Observer).
func (m *Metrics) Order(ctx context.Context, outcome string, age time.Duration) {
	m.orders.WithLabelValues(outcome).Inc()
	if outcome != "settled" {
		m.orderTime.WithLabelValues(outcome).Observe(age.Seconds())
	}
	invocationOf(ctx).count(ordersKey+outcome, 1)
}

// Redriven records orders published again (worker.Observer).
func (m *Metrics) Redriven(ctx context.Context, n int) {
	if n <= 0 {
		return
	}
	m.redriven.Add(float64(n))
	invocationOf(ctx).count("redriven", n)
}

// ObserveCall records one request to a cloud; it is a provider.CallObserver
// (aliyun.Config.Observe, volcengine.Config.Observe).
func (m *Metrics) ObserveCall(ctx context.Context, c provider.Call) {
	code := m.callCode(c)
	m.calls.WithLabelValues(c.Provider, c.Action, code).Inc()
	m.callTime.WithLabelValues(c.Provider, c.Action).Observe(c.Took.Seconds())
	invocationOf(ctx).call(c.Provider, c.Action, code, c.Took)
}

// callCode is c's code as a label: printable and short, and "other" once
// maxCallLabels label sets exist.
func (m *Metrics) callCode(c provider.Call) string {
	code := c.Code
	if code == "" || len(code) > 64 || !labelSafe(code) {
		code = "invalid"
	}
	key := [3]string{c.Provider, c.Action, code}
	m.callLabelsMu.Lock()
	defer m.callLabelsMu.Unlock()
	if !m.callLabels[key] {
		if len(m.callLabels) >= maxCallLabels {
			return "other"
		}
		m.callLabels[key] = true
	}
	return code
}

func labelSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// Intake times the order intake's answers (xnum_intake_request_duration_seconds).
func (m *Metrics) Intake(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		method := r.Method
		if method != http.MethodPost && method != http.MethodGet {
			method = "other"
		}
		code := strconv.Itoa(sw.status)
		took := time.Since(start)
		m.intake.WithLabelValues(method, code).Observe(took.Seconds())
		invocationOf(r.Context()).count(intakeKey+method+" "+code, 1)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
