package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is what the ledger and the order consumer hold now. Any process
// reads the same State, so its gauges are true however many workers run.
type State struct {
	// Open counts the orders that have not ended, by status (OpenStatuses).
	Open map[string]int
	// Oldest is the age of the oldest open order; 0 when none is open.
	Oldest time.Duration
	// Pending is the order consumer's lag: messages not yet delivered.
	// AckPending are delivered and not yet acknowledged.
	Pending, AckPending uint64
}

// OpenStatuses are the statuses of an order that has not ended, the label
// values of xnum_orders_open.
var OpenStatuses = []string{"accepted", "processing", "in_doubt"}

// StateFunc reads the State (buy.Function.State).
type StateFunc func(ctx context.Context) (State, error)

// Bounds of a State read at scrape time.
const (
	// stateTimeout bounds one read: a ledger of many orders is one watch
	// pass, not a Get per order.
	stateTimeout = 10 * time.Second
	// stateEvery is the least time between two reads: scrapers several, or
	// frequent, share one read.
	stateEvery = time.Second
)

// stateCollector serves the State's gauges, read from its StateFunc at
// scrape time at most every stateEvery.
type stateCollector struct {
	open, oldest, pending, ackPending, up *prometheus.Desc

	mu     sync.Mutex
	read   StateFunc
	last   time.Time
	state  State
	ok     bool
	hasAny bool // a State was read or observed at least once
}

func newStateCollector() *stateCollector {
	return &stateCollector{
		open: prometheus.NewDesc("xnum_orders_open",
			"Orders that have not ended, by status, read from the ledger at scrape time.", []string{"status"}, nil),
		oldest: prometheus.NewDesc("xnum_order_oldest_open_seconds",
			"Age of the oldest order that has not ended (0: none), read from the ledger at scrape time.", nil, nil),
		pending: prometheus.NewDesc("xnum_consumer_pending_messages",
			"Order messages the JetStream consumer has not delivered yet (its lag).", nil, nil),
		ackPending: prometheus.NewDesc("xnum_consumer_ack_pending_messages",
			"Order messages delivered and not yet acknowledged.", nil, nil),
		up: prometheus.NewDesc("xnum_ledger_up",
			"1 when the last read of the ledger and the order consumer succeeded, else 0.", nil, nil),
	}
}

// WatchState makes the gauges of xnum_orders_open, the oldest open order
// and the consumer's lag come from read, at scrape time. Until it is
// called a process has none of them (remain and pools have no ledger).
func (m *Metrics) WatchState(read StateFunc) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.read, m.state.last = read, time.Time{}
}

// ObserveState records a State read elsewhere (a timer drain reads it once
// per invocation): it goes into the invocation's line, and is what the
// gauges show until the next read.
func (m *Metrics) ObserveState(ctx context.Context, s State) {
	m.state.mu.Lock()
	m.state.state, m.state.ok, m.state.hasAny, m.state.last = s, true, true, time.Now()
	m.state.mu.Unlock()
	invocationOf(ctx).setState(s)
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.oldest, c.pending, c.ackPending, c.up} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read != nil && time.Since(c.last) >= stateEvery {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		s, err := c.read(ctx)
		cancel()
		c.last, c.ok, c.hasAny = time.Now(), err == nil, true
		if err == nil {
			c.state = s
		}
	}
	if !c.hasAny {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolFloat(c.ok))
	if !c.ok {
		return // no figure rather than a stale one
	}
	for _, st := range OpenStatuses {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(c.state.Open[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, c.state.Oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(c.state.Pending))
	ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(c.state.AckPending))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
