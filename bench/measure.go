package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
)

// remainQuery is what the remain figures ask: a city with stock in the
// emulator's default seed.
var remainQuery = provider.RemainQuery{City: "杭州", SpecID: provider.SpecVirtual}

func remainProbe() probe {
	v := url.Values{"city": {remainQuery.City}, "specId": {strconv.Itoa(int(remainQuery.SpecID))}}
	return probe{Method: http.MethodGet, Path: "/remain?" + v.Encode(), Status: http.StatusOK}
}

var poolsProbe = probe{Method: http.MethodGet, Path: "/pools?limit=10", Status: http.StatusOK}

// ordersProbe is buy's intake: a valid order, accepted. Each try is a new
// order (no Idempotency-Key, so the function makes an id).
func ordersProbe() probe {
	return probe{
		Method: http.MethodPost, Path: "/orders", Status: http.StatusAccepted,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body: func() []byte {
			b, _ := json.Marshal(events.OrderRequested{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: provider.SpecCarrier, Quantity: 1})
			return b
		},
	}
}

// measure runs the parts o asks for and returns their rows.
func measure(ctx context.Context, o options, b binaries) ([]Row, error) {
	c, err := startCloud()
	if err != nil {
		return nil, err
	}
	defer c.Close()

	hello := &target{name: "net/http hello", bin: b.hello, probe: helloProbe, build: b.builds["hello"]}
	var fns []target
	var missing []Row // rows for functions that could not be built
	if b.remain != "" {
		fns = append(fns, target{name: "remain", bin: b.remain, env: c.aliyunEnv(), probe: remainProbe(), build: b.builds["remain"], base: hello})
	}
	if b.pools != "" {
		fns = append(fns, target{name: "pools", bin: b.pools, env: c.volcEnv(), probe: poolsProbe, build: b.builds["pools"], base: hello})
	}
	var nats *broker
	if b.buy != "" && (o.has("coldstart") || o.has("memory")) {
		if nats, err = startBroker(); err != nil {
			return nil, err
		}
		defer nats.Close()
		natsEnv := []string{config.NATSURL + "=" + nats.srv.ClientURL()}
		helloNATS := &target{name: "NATS hello", bin: b.helloNATS, env: natsEnv, build: b.builds["hellonats"],
			probe: probe{Method: http.MethodGet, Path: "/", Status: http.StatusAccepted}}
		// As on FC: the intake alone (XNUM_BUY_ROLE=intake); the worker
		// buys orders from event invocations.
		env := append(append(c.aliyunEnv(), natsEnv...), buy.EnvRole+"="+string(buy.RoleIntake))
		fns = append(fns, target{name: "buy (intake)", bin: b.buy, env: env, probe: ordersProbe(), build: b.builds["buy"], base: helloNATS})
	}
	for _, name := range []string{"remain", "pools", "buy"} {
		if err := b.missing[name]; err != nil {
			missing = append(missing, Row{Figure: name + ": cold start, peak RSS, binary size", Err: err})
		}
	}

	var rows []Row
	if o.has("coldstart") {
		logf("cold start: %d functions and their baselines, %d times each", len(fns), o.reps)
		rows = append(rows, coldStartRows(ctx, fns, o.reps)...)
	}
	if o.has("throughput") {
		var remain *target
		for i := range fns {
			if fns[i].name == "remain" {
				remain = &fns[i]
			}
		}
		if remain == nil {
			rows = append(rows, Row{Figure: "remain throughput", Err: fmt.Errorf("no remain binary: %v", b.missing["remain"])})
		} else {
			for _, latency := range o.latencies {
				logf("remain throughput: %v per side at concurrency %d, provider latency %v", o.duration, o.concurrency, latency)
				profiled(o, fmt.Sprintf("throughput-%v", latency), func() {
					rows = append(rows, remainThroughputRows(ctx, c, *remain, *hello, o.concurrency, o.duration, latency)...)
				})
			}
		}
	}
	if o.has("pipeline") {
		logf("pipeline: %d orders", o.orders)
		rows = append(rows, pipelineRow(ctx, o))
	}
	if o.has("limit") {
		logf("provider limit: %d orders of %d at %s QPS", o.limitOrders, o.limitQuantity, fmtFloat(o.qps))
		rows = append(rows, limitRows(ctx, o)...)
	}
	if o.has("latency") {
		logf("order latency: %d orders at %s/s per shape, provider %v, then %d at once", o.latencyOrders, fmtFloat(o.latencyRate), o.latencyProvider, o.latencyBurst)
		rows = append(rows, latencyRows(ctx, o, b.buy)...)
	}
	if o.has("memory") {
		logf("peak RSS: %d rounds of %d concurrent requests", o.rssRounds, o.rssRequests)
		rows = append(rows, peakRSSRows(ctx, fns, o.rssRequests, o.rssRounds)...)
		rows = append(rows, sizeRows(fns)...)
	}
	return append(rows, missing...), nil
}
