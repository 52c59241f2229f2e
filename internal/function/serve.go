package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/lambda"
)

// Option configures Run.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	lookup          func(string) (string, bool)
	listener        net.Listener
	addr            string
	stdout          io.Writer
	nats            natsOptions
	shutdownTimeout time.Duration
	metrics         *metrics.Metrics
	metricsAddr     string
	metricsListener net.Listener
}

// WithLogger sets the JSON logger (default: logging.New on stdout with the
// function's name).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithLookup reads the environment through lookup instead of os.LookupEnv.
func WithLookup(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookup = lookup }
}

// WithListener serves HTTP on l instead of the address of
// config.LoadHTTPAddr.
func WithListener(l net.Listener) Option { return func(o *options) { o.listener = l } }

// WithAddr serves HTTP on addr instead of the address of
// config.LoadHTTPAddr.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithStdout sets where FC's plain-text invocation markers go.
func WithStdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// WithMetrics gives out m the way the platform allows: on Lambda as EMF
// lines per invocation, on FC (config.OnFC or FC_RUNTIME_API set) as
// one JSON line per invocation, and when addr is set (XNUM_METRICS_ADDR;
// not on Lambda) as Prometheus text at GET /metrics beside GET /healthz and
// GET /readyz (Ops) on a listener of their own, never on the function's
// routes.
func WithMetrics(m *metrics.Metrics, addr string) Option {
	return func(o *options) { o.metrics, o.metricsAddr = m, addr }
}

// WithMetricsListener serves Ops on l (tests; see WithMetrics).
func WithMetricsListener(l net.Listener) Option { return func(o *options) { o.metricsListener = l } }

// WithShutdownTimeout bounds the drain when ctx ends (default 20s).
func WithShutdownTimeout(d time.Duration) Option { return func(o *options) { o.shutdownTimeout = d } }

// Serve serves fn until ctx ends or a part of it fails, then stops every
// part, runs fn.PreStop and returns the first failure (nil after a clean
// stop). It serves FC3's custom runtime contract on a port, or FC's go1
// runtime API when FC_RUNTIME_API is set, or Lambda's when
// AWS_LAMBDA_RUNTIME_API is set.
//
// On Lambda only the invoke loop runs: Lambda freezes the process between
// invocations, so NATS services and background loops would stall there.
func Serve(ctx context.Context, fn trigger.Function, opts ...Option) error {
	if err := fn.Validate(); err != nil {
		return err
	}
	o := options{lookup: os.LookupEnv, stdout: os.Stdout, shutdownTimeout: 20 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = logging.New(os.Stdout, logging.Options{Function: fn.Name})
	}
	log := o.logger

	if v, ok := o.lookup(lambda.RuntimeAPIEnv); ok && v != "" {
		if len(fn.Services) > 0 || len(fn.Background) > 0 {
			log.InfoContext(ctx, "on Lambda: NATS services and background loops are not run")
		}
		var lopts []lambda.Option
		if o.metrics != nil {
			lopts = append(lopts, lambda.WithAround(o.metrics.Invocations(metrics.EMF(o.stdout, fn.Name))))
			if o.metricsAddr != "" || o.metricsListener != nil {
				log.InfoContext(ctx, "on Lambda: metrics go out as EMF lines; "+config.MetricsAddr+" is not served")
			}
		}
		err := lambda.Start(ctx, fn, log, lopts...)
		return errors.Join(err, preStop(ctx, fn, o))
	}

	// FC's contract (control paths, x-fc-* headers, hooks) is honoured only
	// where FC runs the process; elsewhere the server listens on loopback
	// unless XNUM_HTTP_ADDR says otherwise.
	onFC := config.OnFC(o.lookup)
	addr := o.addr
	if addr == "" && o.listener == nil {
		var err error
		if addr, err = config.LoadHTTPAddr(o.lookup); err != nil {
			return err
		}
	}

	ns, err := startNATS(ctx, fn, o)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				once.Do(func() { first = fmt.Errorf("%s: %w", name, err) })
				log.ErrorContext(ctx, "a part of the function failed; stopping", "part", name, "err", err)
				cancel()
			}
		}()
	}

	// On FC's go1 runtime (FC_RUNTIME_API set) nothing listens: the
	// runtime API's invocations are served by the same handler of the custom
	// runtime contract, and the go1 loop writes the invocation markers.
	runtimeAPI, onGo1 := o.lookup(fcgo1.RuntimeAPIEnv)
	onGo1 = onGo1 && runtimeAPI != ""
	markers := o.stdout
	if onGo1 {
		markers = io.Discard
	}
	// The go1 runtime API's invocations come from FC alone: its contract
	// holds there too.
	fcOpts := []fc.Option{fc.WithLogger(log), fc.WithStdout(markers), fc.WithShutdownTimeout(o.shutdownTimeout), fc.WithContract(onFC || onGo1)}
	if o.listener != nil {
		fcOpts = append(fcOpts, fc.WithListener(o.listener))
	} else {
		fcOpts = append(fcOpts, fc.WithAddr(addr))
	}
	if flush := ns.flush(); flush != nil {
		fcOpts = append(fcOpts, fc.WithPreStop(flush))
	}
	if o.metrics != nil && (onGo1 || onFC) {
		fcOpts = append(fcOpts, fc.WithAround(o.metrics.Invocations(metrics.FCLine(o.stdout, fn.Name))))
	}
	srv, err := fc.New(fn, fcOpts...)
	if err != nil {
		ns.close(o.shutdownTimeout)
		return err
	}
	opsLn := o.metricsListener
	if opsLn == nil && o.metricsAddr != "" && o.metrics != nil {
		if opsLn, err = net.Listen("tcp", o.metricsAddr); err != nil {
			ns.close(o.shutdownTimeout)
			return fmt.Errorf("serve: %s: %w", config.MetricsAddr, err)
		}
	}
	if opsLn != nil && o.metrics != nil {
		ops := Ops(o.metrics, ns.ready(), fn.Ready)
		log.InfoContext(ctx, "serving /metrics, /healthz and /readyz", "addr", opsLn.Addr().String())
		goRun("metrics", func(ctx context.Context) error { return serveOps(ctx, ops, opsLn, log) })
	}
	if onGo1 {
		rt, err := fcgo1.New(runtimeAPI, srv, fcgo1.WithLogger(log), fcgo1.WithStdout(o.stdout), fcgo1.WithShutdownTimeout(o.shutdownTimeout))
		if err != nil {
			ns.close(o.shutdownTimeout)
			return err
		}
		goRun("fc go1", rt.Run)
	} else {
		goRun("http", srv.Serve)
	}
	if serve := ns.serve(fn, log); serve != nil {
		goRun("nats", serve)
	}
	for i, bg := range fn.Background {
		goRun(fmt.Sprintf("background %d", i), bg)
	}
	wg.Wait()
	err = errors.Join(first, preStop(ctx, fn, o))
	ns.close(o.shutdownTimeout)
	return err
}

// serveOps serves h on ln until ctx ends.
func serveOps(ctx context.Context, h http.Handler, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

func preStop(ctx context.Context, fn trigger.Function, o options) error {
	if fn.PreStop == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := fn.PreStop(pctx); err != nil {
		return fmt.Errorf("pre-stop: %w", err)
	}
	return nil
}
