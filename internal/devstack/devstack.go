// Package devstack runs the whole of xnum in one process for local use
// (`xnum dev`): an embedded NATS server with JetStream, the two-cloud
// emulator on its own loopback port, and the remain, pools and buy functions
// — their HTTP routes on one address, their NATS services, and the buy
// worker consuming the order queue beside the settler. The emulator's
// number reports reach the reports stream as the cloud's reach it through
// MNS, a while after each sale and release, so a buy whose answer is lost
// settles itself. The functions are built as their own binaries build them,
// only pointed at the emulator. The same address serves the operators'
// endpoints: GET /metrics, /healthz and /readyz.
//
// In the FC shape (Config.FC, `xnum dev --fc`) the buy worker is what it is
// on FC instead: a function of its own, on its own loopback port, that the
// emulator's FC invokes — woken by the intake for each accepted order
// (package wakeup), and drained by a timer every minute, which also settles
// what the reports can — with no consumer.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// Config says where the stack listens. Zero ports pick free ones.
type Config struct {
	HTTPAddr     string // the functions' routes, e.g. 127.0.0.1:8080
	NATSAddr     string // the embedded NATS server, e.g. 127.0.0.1:4222
	EmulatorAddr string // the emulator; default 127.0.0.1:0
	// DataDir keeps JetStream's store (orders, ledger) across runs, with
	// every write synced to disk before it is acknowledged (the orders are
	// kept, so a power loss must not lose one); empty means a temporary
	// directory removed at exit, written as the server does by default.
	DataDir string
	// BuyQPS limits the worker's BuySecretNo calls; 0: no limit.
	BuyQPS float64
	// FC runs the buy worker as FC runs it: a function the intake wakes up
	// through the emulator's FC, not a consumer.
	FC bool
	// Markers receives the FC worker's invocation markers (FC Invoke
	// Start/End lines); nil discards them.
	Markers io.Writer
	// ReportsDelay is how long after a sale or release the emulator's
	// NumberManagementReport reaches NATS; negative: never (a lost report).
	ReportsDelay time.Duration
	// ReportsWait is how long the settler waits for a report before it
	// leaves an attempt in doubt to an operator (0: its default).
	ReportsWait time.Duration
	// Emulator passes options (faults, stock) to the emulator.
	Emulator []emulator.Option
	Logger   *slog.Logger
}

// Stack is what Run started, handed to the ready callback.
type Stack struct {
	HTTPURL     string
	NATSURL     string
	EmulatorURL string
	// WorkerURL is the buy worker function's address in the FC shape
	// (empty otherwise).
	WorkerURL string
	DataDir   string // empty for a temporary store
	Emulator  *emulator.Emulator
	Buy       *buy.Function
	Metrics   *metrics.Metrics
}

// Run starts the stack, calls ready once everything answers, and serves
// until ctx ends; then it stops the worker (a buy under way is finished and
// recorded), the servers and NATS, in that order.
func Run(ctx context.Context, cfg Config, ready func(Stack)) (err error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	httpLn, err := net.Listen("tcp", orDefault(cfg.HTTPAddr, "127.0.0.1:8080"))
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer httpLn.Close()
	emuLn, err := net.Listen("tcp", orDefault(cfg.EmulatorAddr, "127.0.0.1:0"))
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer emuLn.Close()

	natsOpts, err := natsOptions(orDefault(cfg.NATSAddr, "127.0.0.1:4222"), cfg.DataDir)
	if err != nil {
		return err
	}
	ns, err := embednats.Start(natsOpts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer ns.Close()

	nc, err := queue.Connect(ns.ClientURL())
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	// The emulator stops after the functions, which may still be finishing
	// a buy when ctx ends; its reports stop with it.
	emuOpts := cfg.Emulator
	if cfg.ReportsDelay >= 0 {
		feed := reports.NewFeed(queue.NewPublisher(js, queue.WithExpectStream(queue.ReportsStreamName)), cfg.ReportsDelay,
			reports.WithFeedLogger(logger))
		defer feed.Close()
		emuOpts = append(slices.Clone(emuOpts), emulator.WithDyplsOptions(dypls.WithReportHook(func(r dypls.Report) { feed.Add(r) })))
	}
	emu, err := emulator.New(emuOpts...)
	if err != nil {
		return err
	}
	emuCtx, stopEmu := context.WithCancel(context.Background())
	emuURL := "http://" + emuLn.Addr().String()
	emuDone := make(chan error, 1)
	go func() { emuDone <- emulator.Serve(emuCtx, emuLn, emu) }()
	defer func() { emu.Close(); stopEmu(); err = errors.Join(err, <-emuDone) }()

	m := metrics.New()
	ali, err := aliyun.New(aliyun.Config{
		AccessKeyID: emulator.DefaultAccessKeyID, AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint: emuURL, Logger: logger, Observe: m.ObserveCall,
	})
	if err != nil {
		return err
	}
	volc, err := volcengine.New(volcengine.Config{
		AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultAccessKeySecret,
		Endpoint: emuURL, Logger: logger, Observe: m.ObserveCall,
	})
	if err != nil {
		return err
	}

	buyCfg := buy.Config{QPS: cfg.BuyQPS, Consumer: true, ReportsWait: cfg.ReportsWait, Logger: logger, Reconcile: emulatorSlack,
		Metrics: m}
	var worker *fcWorker
	if cfg.FC {
		if worker, err = startWorker(ctx, js, ali, emu, emuURL, cfg.BuyQPS, cfg.ReportsWait, logger, m); err != nil {
			return err
		}
		defer worker.ln.Close() // served until ctx ends; closed here if Run fails before
		// As s.yaml deploys them: the intake never buys, the worker does.
		buyCfg.Role, buyCfg.Consumer, buyCfg.Accepted = buy.RoleIntake, false, worker.waker.Accepted
	}
	buyFn, err := buy.New(ctx, js, ali, buyCfg)
	if err != nil {
		return err
	}
	fn := combine(
		mounted{remain.New(aliyun.Name, ali).Function(), []string{remain.Pattern}},
		mounted{pools.New(volcengine.Name, volc, pools.WithNumbers(volc)).Function(), []string{pools.Pattern, pools.NumbersPattern}},
		mounted{buyFn.Function, buyFn.Intake.Patterns()},
		mounted{trigger.Function{Name: "ops", HTTP: function.Ops(m, function.NATSReady(nc), buyFn.Ready)}, []string{"GET /metrics", "GET /readyz"}},
	)

	stack := Stack{
		HTTPURL:     "http://" + httpLn.Addr().String(),
		NATSURL:     ns.ClientURL(),
		EmulatorURL: emuURL,
		DataDir:     cfg.DataDir,
		Emulator:    emu,
		Buy:         buyFn,
		Metrics:     m,
	}
	var workerDone chan error
	if worker != nil {
		stack.WorkerURL = worker.url
		workerDone = make(chan error, 1)
		go func() { workerDone <- worker.serve(ctx, nc, cfg.Markers) }()
		go emu.FC().Timer(ctx, WorkerFunction, "drain", "drain", time.Minute)
	}
	if ready != nil {
		// httpLn already queues connections: what ready prints works at once.
		ready(stack)
	}
	err = function.Serve(ctx, fn,
		function.WithListener(httpLn),
		function.WithLogger(logger),
		function.WithNATS(nc),
		function.WithLookup(noEnv),
	)
	if workerDone != nil {
		err = errors.Join(err, <-workerDone)
	}
	return err
}

// noEnv is the environment the functions see: xnum dev is local, no FC or
// Lambda environment applies.
func noEnv(string) (string, bool) { return "", false }

// emulatorSlack: the emulator's clock is ours, so evidence needs only the
// slack of its times' one-second resolution, not reconcile.DefaultSlack's
// allowance for the cloud's clock. Two buys lost within the slack of each
// other cannot be told apart, so a smaller slack settles more of them.
var emulatorSlack = []reconcile.Option{reconcile.WithSlack(time.Second)}

// mounted is one function and the route patterns it serves.
type mounted struct {
	fn       trigger.Function
	patterns []string
}

// combine serves several functions as one: each function's routes under its
// own name on one mux, all their NATS services, and the events and
// background loops of those that have them (buy).
func combine(parts ...mounted) trigger.Function {
	mux := httpjson.NewMux()
	out := trigger.Function{Name: "xnum-dev", HTTP: mux}
	for _, m := range parts {
		for _, p := range m.patterns {
			mux.Handle(p, httpjson.Named(m.fn.Name, m.fn.HTTP))
		}
		out.Services = append(out.Services, m.fn.Services...)
		out.Background = append(out.Background, m.fn.Background...)
		if m.fn.Events != nil {
			out.Events = m.fn.Events
		}
	}
	return out
}

func natsOptions(addr, dataDir string) ([]embednats.Option, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("nats address %q: bad port", addr)
	}
	opts := []embednats.Option{embednats.WithHost(host), embednats.WithPort(p), embednats.WithServerName("xnum-dev")}
	if dataDir != "" {
		opts = append(opts, embednats.WithStoreDir(dataDir), embednats.WithSyncAlways())
	}
	return opts, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
