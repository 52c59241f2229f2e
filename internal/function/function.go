// Package function is the common main of the xnum function binaries: it
// reads the configuration every function shares (log level, NATS, where
// metrics go), builds the logger and the Metrics, lets the function wire its own provider and handlers, and
// serves the result (Serve) on whatever the environment asks for: AWS Lambda
// when AWS_LAMBDA_RUNTIME_API is set, FC3's go1 runtime API when
// FC_RUNTIME_API is set, else an HTTP server that honours FC3's custom
// runtime contract where FC runs the process (config.OnFC) and is the
// function's routes alone, on loopback unless XNUM_HTTP_ADDR says otherwise,
// anywhere else; plus the function's NATS request-reply services when NATS
// is configured and its background loops.
// A functions/*/main.go is then only its wiring.
package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// Env is what a function's wiring gets: its environment, a logger that
// writes where FC and Lambda collect logs, the NATS settings, and the
// process's Metrics, for its provider client (Metrics.ObserveCall) and
// its parts.
type Env struct {
	Lookup  envvar.Lookup
	Logger  *slog.Logger
	NATS    config.NATS
	Metrics *metrics.Metrics
}

// Wire builds a function from its environment. The options it returns come
// after the defaults (such as a NATS connection of its own, WithNATS).
type Wire func(ctx context.Context, env Env) (trigger.Function, []Option, error)

// Main runs the function named name with the process's environment until
// SIGINT or SIGTERM, and exits 1 with the error on failure.
func Main(name string, wire Wire) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, name, os.LookupEnv, os.Stdout, wire)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Run is Main without the process: logs and FC's invocation markers go to
// stdout; opts come last, for tests (WithListener).
func Run(ctx context.Context, name string, lookup envvar.Lookup, stdout io.Writer, wire Wire, opts ...Option) error {
	if err := config.CheckSDKDebug(lookup); err != nil {
		return err
	}
	level, err := config.LoadLevel(lookup)
	if err != nil {
		return err
	}
	nc, err := config.LoadNATS(lookup)
	if err != nil {
		return err
	}
	withNATS, err := natsFrom(nc)
	if err != nil {
		return err
	}
	metricsAddr, err := config.LoadMetricsAddr(lookup)
	if err != nil {
		return err
	}
	logger := logging.New(stdout, logging.Options{Level: level, Function: name})
	if nc.Enabled() && config.OnFC(lookup) && !nc.Secured() {
		logger.WarnContext(ctx, "NATS is reached without TLS or without credentials: whoever reaches it can publish orders "+
			"and rewrite the ledger; set a tls:// URL (or NATS_CA) and NATS_CREDS (see the README's Security section)")
	}
	m := metrics.New()
	fn, own, err := wire(ctx, Env{Lookup: lookup, Logger: logger, NATS: nc, Metrics: m})
	if err != nil {
		return err
	}
	all := []Option{
		WithLogger(logger),
		WithLookup(lookup),
		WithStdout(stdout),
		withNATS,
		WithMetrics(m, metricsAddr),
	}
	all = append(append(all, own...), opts...)
	return Serve(ctx, fn, all...)
}
