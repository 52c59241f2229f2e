// Command remain is the remain function: how many privacy numbers can still
// be bought on Alibaba Cloud Dyplsapi. It serves GET /remain under FC3's
// custom runtime contract (or on Lambda when AWS_LAMBDA_RUNTIME_API is set),
// and xnum.remain on NATS when NATS_URL is set.
package main

import (
	"context"

	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
)

func main() { function.Main("remain", wire) }

func wire(_ context.Context, env function.Env) (trigger.Function, []function.Option, error) {
	cfg, err := aliyun.ConfigFromEnv(env.Lookup)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	cfg.Logger, cfg.Observe = env.Logger, env.Metrics.ObserveCall
	client, err := aliyun.New(cfg)
	if err != nil {
		return trigger.Function{}, nil, err
	}
	return remain.New(aliyun.Name, client).Function(), nil, nil
}
