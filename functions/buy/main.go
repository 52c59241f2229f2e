// Command buy is the buy function: it takes purchase orders over HTTP
// (POST /orders, GET /orders/{id}) onto NATS JetStream, and buys each order's
// numbers on Alibaba Cloud Dyplsapi exactly once — from a long-lived consumer
// (locally, XNUM_BUY_CONSUMER), from FC event invocations (timer drain,
// EventBridge MNS/RocketMQ/Kafka), or from Lambda SQS batches.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/pkg/buy"
	"github.com/xnum-dev/xnum/pkg/config"
	"github.com/xnum-dev/xnum/pkg/logging"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/queue"
	"github.com/xnum-dev/xnum/pkg/trigger/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "buy:", err)
		os.Exit(1)
	}
}

// run wires config, provider, queue and runtime; opts are for tests.
func run(ctx context.Context, lookup config.Lookup, stdout io.Writer, opts ...serve.Option) error {
	level, err := config.LoadLevel(lookup)
	if err != nil {
		return err
	}
	ac, err := config.LoadAliyun(lookup)
	if err != nil {
		return err
	}
	nc, err := config.LoadNATS(lookup)
	if err != nil {
		return err
	}
	if !nc.Enabled() {
		return &config.Error{Var: config.NATSURL, Reason: "is required: the buy function queues orders on NATS JetStream"}
	}
	bc, err := config.LoadBuy(lookup)
	if err != nil {
		return err
	}
	logger := logging.New(stdout, logging.Options{Level: level, Function: "buy"})
	ac.Logger = logger
	client, err := aliyun.New(ac)
	if err != nil {
		return err
	}
	conn, err := queue.Connect(nc.URL, nc.Options()...)
	if err != nil {
		return queue.Unavailable("connect to NATS", err)
	}
	defer conn.Drain()
	js, err := jetstream.New(conn)
	if err != nil {
		return err
	}
	fn, err := buy.New(ctx, js, client, buy.Config{QPS: bc.QPS, Consumer: bc.Consumer, Logger: logger})
	if err != nil {
		return err
	}
	return serve.Run(ctx, fn.Function, append([]serve.Option{
		serve.WithLogger(logger),
		serve.WithLookup(lookup),
		serve.WithStdout(stdout),
		serve.WithNATS(conn),
	}, opts...)...)
}
