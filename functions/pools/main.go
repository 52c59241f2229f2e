// Command pools is the pools function: the number pools of Volcengine VMS
// and the numbers in them. It serves GET /pools and GET /pools/{poolNo}/numbers
// under FC3's custom runtime contract (or on Lambda when
// AWS_LAMBDA_RUNTIME_API is set), and xnum.pools / xnum.pools.numbers on NATS
// when NATS_URL is set.
package main

import (
	"context"

	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

func main() { function.Main("pools", wire) }

func wire(_ context.Context, env function.Env) (trigger.Function, []function.Option, error) {
	cfg, err := volcengine.ConfigFromEnv(env.Lookup)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	cfg.Logger, cfg.Observe = env.Logger, env.Metrics.ObserveCall
	client, err := volcengine.New(cfg)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	return pools.New(volcengine.Name, client, pools.WithNumbers(client)).Function(), nil, nil
}
