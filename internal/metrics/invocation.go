package metrics

import (
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/traceparent"
)

// An invocation of a function on FC or Lambda is the only unit their
// platforms see: the process is frozen between invocations and nothing can
// scrape it. So a Metrics also records what each invocation did, in the
// invocation's context, and the runtime writes it out as one line when the
// invocation ends: a JSON line SLS can query on FC (FCLine), Embedded Metric
// Format lines CloudWatch turns into metrics on Lambda (EMF).

// Keys of an invocation's counts.
const (
	ordersKey   = "orders/"
	buysKey     = "buys/"
	refusalsKey = "refusals/"
	intakeKey   = "intake/"
)

// maxValues bounds the durations an invocation keeps per provider action
// (EMF takes at most 100 values per metric).
const maxValues = 100

// Invocation is what one invocation did.
type Invocation struct {
	start time.Time

	mu     sync.Mutex
	counts map[string]int
	calls  map[callKey]*callTally
	state  *State
}

type callKey struct{ provider, action, code string }

type callTally struct {
	n       int
	seconds float64
	values  []float64 // milliseconds, at most maxValues
}

type invocationKey struct{}

func invocationOf(ctx context.Context) *Invocation {
	inv, _ := ctx.Value(invocationKey{}).(*Invocation)
	return inv
}

func (i *Invocation) count(key string, n int) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.counts[key] += n
}

func (i *Invocation) call(provider, action, code string, took time.Duration) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	k := callKey{provider, action, code}
	t := i.calls[k]
	if t == nil {
		t = &callTally{}
		i.calls[k] = t
	}
	t.n++
	t.seconds += took.Seconds()
	if len(t.values) < maxValues {
		t.values = append(t.values, float64(took.Microseconds())/1000)
	}
}

func (i *Invocation) setState(s State) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.state = &s
}

// Emit writes out what an invocation did when it ends.
type Emit func(ctx context.Context, inv *Invocation)

// Invocations returns the hook a runtime runs around each invocation
// (fc.WithAround, lambda.WithAround): the invocation is recorded in the
// context it runs with, and emit writes it out when it ends.
func (m *Metrics) Invocations(emit Emit) func(ctx context.Context) (context.Context, func()) {
	return func(ctx context.Context) (context.Context, func()) {
		inv := &Invocation{start: time.Now(), counts: map[string]int{}, calls: map[callKey]*callTally{}}
		ctx = context.WithValue(ctx, invocationKey{}, inv)
		return ctx, func() { emit(ctx, inv) }
	}
}

// lineWriter writes whole lines to w, one at a time.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return // maps of strings and numbers: cannot happen
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(b, '\n'))
}

// FCLineMsg is the "msg" of an invocation's line on FC, to find the lines in
// SLS.
const FCLineMsg = "xnum metrics"

// FCLine writes one JSON line per invocation to w (FC collects stdout into
// SLS): the invocation's counts under the names of the Prometheus
// instruments, every outcome present (zero or not) so SLS sums need no
// defaults:
//
//	{"msg":"xnum metrics","function":"buy","requestId":…,"traceId":…,"durationMs":…,
//	 "xnum_orders_total":{"completed":1,"failed":0,"in_doubt":0,"settled":0},
//	 "xnum_buys_total":{"bought":2,"refused":0,"in_doubt":0},
//	 "xnum_buy_refusals_total":{…},"xnum_orders_redriven_total":0,"xnum_worker_messages":1,
//	 "xnum_intake_requests":{"POST 202":1},
//	 "xnum_provider_requests_total":{"aliyun/BuySecretNo/OK":2},
//	 "xnum_provider_request_duration_seconds_sum":{"aliyun/BuySecretNo":0.08},
//	 "xnum_orders_open":{…},"xnum_order_oldest_open_seconds":…}   (the last two on a timer drain)
//
// It is written directly, not through the logger, so no log level hides it.
func FCLine(w io.Writer, function string) Emit {
	lw := &lineWriter{w: w}
	return func(ctx context.Context, inv *Invocation) {
		line := map[string]any{
			"msg":        FCLineMsg,
			"time":       time.Now().UTC().Format(time.RFC3339Nano),
			"function":   function,
			"durationMs": float64(time.Since(inv.start).Microseconds()) / 1000,
		}
		if id := logging.RequestID(ctx); id != "" {
			line[logging.RequestIDKey] = id
		}
		if tc, ok := traceparent.From(ctx); ok {
			line[logging.TraceIDKey] = tc.TraceIDString()
		}
		inv.mu.Lock()
		defer inv.mu.Unlock()
		line["xnum_orders_total"] = tally(inv.counts, ordersKey, OrderOutcomes)
		line["xnum_buys_total"] = tally(inv.counts, buysKey, BuyOutcomes)
		line["xnum_buy_refusals_total"] = tally(inv.counts, refusalsKey, RefusalKinds)
		line["xnum_orders_redriven_total"] = inv.counts["redriven"]
		line["xnum_worker_messages"] = inv.counts["messages"]
		if in := tally(inv.counts, intakeKey, nil); len(in) > 0 {
			line["xnum_intake_requests"] = in
		}
		if len(inv.calls) > 0 {
			n, secs := map[string]int{}, map[string]float64{}
			for k, t := range inv.calls {
				n[k.provider+"/"+k.action+"/"+k.code] += t.n
				secs[k.provider+"/"+k.action] += t.seconds
			}
			line["xnum_provider_requests_total"] = n
			line["xnum_provider_request_duration_seconds_sum"] = secs
		}
		if s := inv.state; s != nil {
			open := map[string]int{}
			for _, st := range OpenStatuses {
				open[st] = s.Open[st]
			}
			line["xnum_orders_open"] = open
			line["xnum_order_oldest_open_seconds"] = s.Oldest.Seconds()
			line["xnum_consumer_pending_messages"] = s.Pending
			line["xnum_consumer_ack_pending_messages"] = s.AckPending
		}
		lw.write(line)
	}
}

// tally is the counts under prefix, by the rest of their key: every name of
// names (zero when absent), and the others that occurred.
func tally(counts map[string]int, prefix string, names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		out[n] = 0
	}
	for k, v := range counts {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			out[name] += v
		}
	}
	return out
}

// EMFNamespace is the CloudWatch namespace of the EMF metrics.
const EMFNamespace = "xnum"

// EMF writes what an invocation did to w as CloudWatch Embedded Metric
// Format lines (Lambda collects stdout into CloudWatch Logs, which turns
// them into metrics), as Powertools' metrics utility does: one line with
// the order, buy and worker counts under the dimension "function", and one
// per provider action and code with its requests and their durations
// (dimensions function, provider, action, and code). Like FCLine it is
// written directly: the lines carry no level, and Lambda takes them as
// INFO (an application log level of WARN or above drops them).
func EMF(w io.Writer, function string) Emit {
	lw := &lineWriter{w: w}
	return func(ctx context.Context, inv *Invocation) {
		now := time.Now()
		base := func() map[string]any {
			doc := map[string]any{"function": function}
			if id := logging.RequestID(ctx); id != "" {
				doc[logging.RequestIDKey] = id
			}
			if tc, ok := traceparent.From(ctx); ok {
				doc[logging.TraceIDKey] = tc.TraceIDString()
			}
			return doc
		}
		type metric struct {
			Name string `json:"Name"`
			Unit string `json:"Unit"`
		}
		directive := func(doc map[string]any, dims [][]string, ms []metric) {
			doc["_aws"] = map[string]any{
				"Timestamp": now.UnixMilli(),
				"CloudWatchMetrics": []any{map[string]any{
					"Namespace": EMFNamespace, "Dimensions": dims, "Metrics": ms,
				}},
			}
		}

		inv.mu.Lock()
		defer inv.mu.Unlock()
		doc := base()
		var ms []metric
		add := func(name, unit string, v any) {
			doc[name] = v
			ms = append(ms, metric{name, unit})
		}
		for name, v := range tally(inv.counts, ordersKey, OrderOutcomes) {
			add("orders_"+name, "Count", v)
		}
		for name, v := range tally(inv.counts, buysKey, BuyOutcomes) {
			add("buys_"+name, "Count", v)
		}
		for name, v := range tally(inv.counts, refusalsKey, RefusalKinds) {
			add("buy_refusals_"+name, "Count", v)
		}
		add("orders_redriven", "Count", inv.counts["redriven"])
		add("worker_messages", "Count", inv.counts["messages"])
		add("duration", "Milliseconds", float64(time.Since(inv.start).Microseconds())/1000)
		if s := inv.state; s != nil {
			for _, st := range OpenStatuses {
				add("orders_open_"+st, "Count", s.Open[st])
			}
			add("order_oldest_open", "Seconds", s.Oldest.Seconds())
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
		directive(doc, [][]string{{"function"}}, ms)
		lw.write(doc)

		keys := make([]callKey, 0, len(inv.calls))
		for k := range inv.calls {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			return a.provider+a.action+a.code < b.provider+b.action+b.code
		})
		for _, k := range keys {
			t := inv.calls[k]
			doc := base()
			doc["provider"], doc["action"], doc["code"] = k.provider, k.action, k.code
			doc["provider_requests"] = t.n
			doc["provider_request_duration"] = t.values
			directive(doc, [][]string{{"function", "provider", "action"}, {"function", "provider", "action", "code"}},
				[]metric{{"provider_requests", "Count"}, {"provider_request_duration", "Milliseconds"}})
			lw.write(doc)
		}
	}
}
