// Command buy is the buy function: it takes purchase orders over HTTP
// (POST /orders, GET /orders/{id}) onto NATS JetStream, and buys each order's
// numbers on Alibaba Cloud Dyplsapi exactly once — from a long-lived consumer
// (XNUM_BUY_CONSUMER, on by default off FC), from FC event invocations (the
// intake's wake-ups, timer drain, EventBridge MNS/RocketMQ/Kafka), or from
// Lambda SQS batches — and settles the buys whose answer was lost from the
// cloud's number reports (the same consumer, or an EventBridge trigger of
// the reports' MNS queue). With XNUM_BUY_WORKER_FUNCTION set, the intake
// wakes that worker function up on FC for each order it accepts.
// XNUM_BUY_ROLE says which part a process is: intake (takes orders, never
// buys), worker (buys and settles, serves no routes) or all (both, the
// default off FC).
package main

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
)

func main() { function.Main("buy", wire) }

func wire(_ context.Context, env function.Env) (trigger.Function, []function.Option, error) {
	if !env.NATS.Enabled() {
		return trigger.Function{}, nil, envvar.Bad(config.NATSURL, "is required: the buy function queues orders on NATS JetStream")
	}
	cfg, err := buy.ConfigFromEnv(env.Lookup)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	wc, err := config.LoadWakeup(env.Lookup)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	// The intake never buys: it needs Alibaba Cloud credentials only to
	// sign its wake-ups of the worker.
	var ac aliyun.Config
	if cfg.Role != buy.RoleIntake || wc.Enabled() {
		if ac, err = aliyun.ConfigFromEnv(env.Lookup); err != nil {
			return trigger.Function{}, nil, err
		}
	}
	cfg.Logger, cfg.Metrics = env.Logger, env.Metrics
	cfg.Queue = []queue.Option{queue.WithReplicas(env.NATS.Replicas)}
	if wc.Enabled() {
		// The role's credentials of each request sign the wake-up; the
		// environment's (which FC sets too) when a request has none.
		fcc, err := wakeup.NewClient(wakeup.Config{Endpoint: wc.Endpoint, Credentials: provider.Credentials{
			AccessKeyID: ac.AccessKeyID, AccessKeySecret: ac.AccessKeySecret, SecurityToken: ac.SecurityToken}})
		if err != nil {
			return trigger.Function{}, nil, err
		}
		cfg.Accepted = wakeup.NewWaker(fcc, wc.Function, wakeup.WithLogger(env.Logger)).Accepted
	}
	var client *aliyun.Client
	if cfg.Role != buy.RoleIntake {
		ac.Logger, ac.Observe = env.Logger, env.Metrics.ObserveCall
		if client, err = aliyun.New(ac); err != nil {
			return trigger.Function{}, nil, err
		}
	}
	// NATS is reached at FC's initializer hook (or the first need), not
	// here: a start that cannot reach it still answers, with 503.
	dial := func(context.Context) (*nats.Conn, error) { return queue.Connect(env.NATS.URL, env.NATS.Options()...) }
	fn, err := buy.Deferred(dial, client, cfg)
	return fn, nil, err
}
