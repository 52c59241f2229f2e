// Command pools is the pools function: the number pools of Volcengine VMS and
// their numbers. It serves GET /pools and GET /pools/{poolNo}/numbers under
// FC3's custom runtime contract (or on Lambda when AWS_LAMBDA_RUNTIME_API is
// set), and xnum.pools / xnum.pools.numbers on NATS when NATS_URL is set.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/xnum-dev/xnum/pkg/config"
	"github.com/xnum-dev/xnum/pkg/logging"
	"github.com/xnum-dev/xnum/pkg/pools"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
	"github.com/xnum-dev/xnum/pkg/trigger/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pools:", err)
		os.Exit(1)
	}
}

// run wires config, provider and runtime; logs and FC's invocation markers
// go to stdout; opts are for tests.
func run(ctx context.Context, lookup config.Lookup, stdout io.Writer, opts ...serve.Option) error {
	level, err := config.LoadLevel(lookup)
	if err != nil {
		return err
	}
	cfg, err := config.LoadVolcengine(lookup)
	if err != nil {
		return err
	}
	nc, err := config.LoadNATS(lookup)
	if err != nil {
		return err
	}
	logger := logging.New(stdout, logging.Options{Level: level, Function: "pools"})
	cfg.Logger = logger
	client, err := volcengine.New(cfg)
	if err != nil {
		return err
	}
	fn := pools.New("volcengine", client, pools.WithNumbers(client)).Function()
	return serve.Run(ctx, fn, append([]serve.Option{
		serve.WithLogger(logger),
		serve.WithLookup(lookup),
		serve.WithStdout(stdout),
		serve.WithNATSURL(nc.URL, nc.Options()...),
	}, opts...)...)
}
