package aliyun

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// Observe is told of every request sent — each retry of a query too, a buy
// once — with the cloud's code, or the kind of an outcome without one.
func TestObserve(t *testing.T) {
	e := newEnv(t)
	var (
		mu  sync.Mutex
		got []string
	)
	c := e.client(t, func(cfg *Config) {
		cfg.QueryAttempts = 2
		cfg.Observe = func(_ context.Context, call provider.Call) {
			mu.Lock()
			defer mu.Unlock()
			if call.Provider != Name || call.Took <= 0 {
				t.Errorf("call %+v: want provider %s and a duration", call, Name)
			}
			got = append(got, call.Action+" "+call.Code)
		}
	})
	ctx := context.Background()
	q := provider.RemainQuery{City: "杭州", SpecID: 2}
	buy := provider.BuyRequest{PoolKey: "FC100000000000001", City: "杭州", SpecID: 2}
	if _, err := c.Remain(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Buy(ctx, buy); err != nil {
		t.Fatal(err)
	}
	e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"})
	_, _ = c.Remain(ctx, q)
	e.faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	_, _ = c.Buy(ctx, buy)
	e.faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
	_, _ = c.Buy(ctx, buy)
	want := []string{
		"QuerySecretNoRemain OK", "BuySecretNo OK",
		"QuerySecretNoRemain isp.SYSTEM_ERROR", "QuerySecretNoRemain isp.SYSTEM_ERROR",
		"BuySecretNo InDoubt",
		"BuySecretNo isv.NO_AVAILABLE_NUMBER",
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}
