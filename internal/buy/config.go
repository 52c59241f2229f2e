package buy

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/worker"
)

// The environment variables ConfigFromEnv reads.
const (
	EnvRole         = "XNUM_BUY_ROLE"
	EnvQPS          = "XNUM_ALIYUN_BUY_QPS"
	EnvConsumer     = "XNUM_BUY_CONSUMER"
	EnvEventTimeout = "XNUM_EVENT_TIMEOUT"
	EnvReportsWait  = "XNUM_REPORTS_WAIT"
	EnvLease        = "XNUM_BUY_LEASE"
	EnvSweepEvery   = "XNUM_BUY_SWEEP_EVERY"
	EnvSweepIdle    = "XNUM_BUY_SWEEP_IDLE"
)

// DefaultQPS is Config.QPS unless XNUM_ALIYUN_BUY_QPS says otherwise:
// Dyplsapi publishes no limit, so a modest one.
const DefaultQPS = 5.0

const (
	maxQPS          = 1000
	maxEventTimeout = 10 * time.Minute
	minReportsWait  = time.Second
	maxReportsWait  = 24 * time.Hour
	minTuning       = time.Second // the lease and the sweep's
	maxTuning       = time.Hour
)

// Config is what the buy function needs beyond its connections.
type Config struct {
	// Role is what the process serves (default RoleAll).
	Role Role
	// QPS is the account's BuySecretNo calls per second, which every
	// worker on the same JetStream shares (the limits bucket); 0: no limit.
	QPS float64
	// Consumer runs the long-lived JetStream consumer beside the routes
	// (not with RoleIntake). FC freezes an instance between invocations, so
	// there the worker runs per event (timer drain, EventBridge) instead.
	Consumer bool
	// EventTimeout bounds each event invocation that comes without a
	// deadline of the platform's (0: none), so that a drain stops starting
	// buys before the platform's timeout kills it mid-buy. FC's go1 runtime
	// and Lambda give a deadline; FC's custom runtime does not. Set it a
	// little under the function's timeout.
	EventTimeout time.Duration
	// Accepted is called once the intake has durably accepted an order,
	// such as to wake the worker function up on FC (wakeup.Waker.Accepted).
	Accepted func(ctx context.Context, order events.OrderRequested)
	// ReportsWait is how long after an attempt's answer was due its number
	// report is waited for before the attempt is left to an operator
	// (0: settle.DefaultWait).
	ReportsWait time.Duration
	// Lease, SweepEvery and SweepIdle tune the worker (worker.WithLease,
	// worker.WithSweep); 0 keeps its defaults.
	Lease, SweepEvery, SweepIdle time.Duration
	Logger                       *slog.Logger
	// Metrics, when set, observes the worker, the settlements and the
	// intake, and reads the ledger's and the consumer's State for its
	// gauges.
	Metrics *metrics.Metrics
	// Queue, Worker, Settle and Reconcile (the settler's evidence rules)
	// pass options through, e.g. for replicas, tests or an emulator's clock.
	Queue     []queue.Option
	Worker    []worker.Option
	Settle    []settle.Option
	Reconcile []reconcile.Option
}

// ConfigFromEnv reads XNUM_BUY_ROLE (intake, worker or all; default all off
// FC, required on FC, where the HTTP function and the event function are
// two), XNUM_ALIYUN_BUY_QPS (calls per second, default 5; 0: no limit),
// XNUM_BUY_CONSUMER (true or false; default false on FC, true elsewhere;
// never with the intake role), XNUM_EVENT_TIMEOUT (a duration; default
// none), XNUM_REPORTS_WAIT (a duration from 1s to 24h; default the
// settler's), and XNUM_BUY_LEASE, XNUM_BUY_SWEEP_EVERY and
// XNUM_BUY_SWEEP_IDLE (durations from 1s to 1h; default the worker's). An
// error names the variable at fault.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	onFC := config.OnFC(lookup)
	c := Config{Role: Role(envvar.Get(lookup, EnvRole))}
	switch c.Role {
	case RoleIntake, RoleWorker, RoleAll:
	case "":
		if onFC {
			// An intake that also buys would drain the queue from the
			// function the internet reaches, on its short timeout.
			return Config{}, envvar.Bad(EnvRole, "is required on FC: intake for the function with the HTTP trigger, worker for the one that drains the queue and is woken up")
		}
		c.Role = RoleAll
	default:
		return Config{}, envvar.Bad(EnvRole, "must be intake, worker or all, not "+strconv.Quote(string(c.Role)))
	}
	var err error
	if c.QPS, err = envvar.Float(lookup, EnvQPS, DefaultQPS, 0, maxQPS, "calls per second (0: no limit)"); err != nil {
		return Config{}, err
	}
	if c.Consumer, err = envvar.Bool(lookup, EnvConsumer, !onFC && c.Role != RoleIntake); err != nil {
		return Config{}, err
	}
	if c.Consumer && c.Role == RoleIntake {
		return Config{}, envvar.Bad(EnvConsumer, "is true but "+EnvRole+" is intake, which never buys")
	}
	if c.EventTimeout, err = envvar.Duration(lookup, EnvEventTimeout); err != nil {
		return Config{}, err
	}
	if why := envvar.Between(c.EventTimeout, maxEventTimeout); why != "" {
		return Config{}, envvar.Bad(EnvEventTimeout, why)
	}
	for _, d := range []struct {
		name   string
		v      *time.Duration
		lo, hi time.Duration
	}{
		{EnvReportsWait, &c.ReportsWait, minReportsWait, maxReportsWait},
		{EnvLease, &c.Lease, minTuning, maxTuning},
		{EnvSweepEvery, &c.SweepEvery, minTuning, maxTuning},
		{EnvSweepIdle, &c.SweepIdle, minTuning, maxTuning},
	} {
		if *d.v, err = envvar.DurationIn(lookup, d.name, d.lo, d.hi); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}
