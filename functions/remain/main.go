// Command remain is the remain function: how many privacy numbers can still
// be bought on Alibaba Cloud Dyplsapi. It serves GET /remain under FC3's
// custom runtime contract (or on Lambda when AWS_LAMBDA_RUNTIME_API is set),
// and xnum.remain on NATS when NATS_URL is set.
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
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/remain"
	"github.com/xnum-dev/xnum/pkg/trigger/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "remain:", err)
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
	cfg, err := config.LoadAliyun(lookup)
	if err != nil {
		return err
	}
	nc, err := config.LoadNATS(lookup)
	if err != nil {
		return err
	}
	logger := logging.New(stdout, logging.Options{Level: level, Function: "remain"})
	cfg.Logger = logger
	client, err := aliyun.New(cfg)
	if err != nil {
		return err
	}
	fn := remain.New("aliyun", client).Function()
	return serve.Run(ctx, fn, append([]serve.Option{
		serve.WithLogger(logger),
		serve.WithLookup(lookup),
		serve.WithStdout(stdout),
		serve.WithNATSURL(nc.URL, nc.Options()...),
	}, opts...)...)
}
