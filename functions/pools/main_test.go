package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

var bin = functiontest.Binary{Name: "pools", Wire: wire}

// The same binary on FC and off it: the routes answer in both; an event
// invocation is FC's to send, so off FC /invoke is only an unknown route.
func TestFC(t *testing.T) {
	emu := emulatortest.NewServer(t)
	t.Run("on FC", func(t *testing.T) {
		testRoutesAndInvoke(t, testutil.Env(emu.VolcengineEnv()).With(testutil.OnFC...), true)
	})
	t.Run("off FC", func(t *testing.T) { testRoutesAndInvoke(t, emu.VolcengineEnv(), false) })
}

func testRoutesAndInvoke(t *testing.T, env testutil.Env, onFC bool) {
	out := &testutil.SyncBuffer{}
	base := bin.Start(t, env, out)
	var got pools.Response
	if status := functiontest.GetJSON(t, base+"/pools?limit=3", &got); status != 200 || got.Provider != "volcengine" || len(got.Records) != 3 || got.Total <= 3 {
		t.Fatalf("GET /pools: %d %+v", status, got)
	}
	var nums pools.NumbersResponse
	if status := functiontest.GetJSON(t, base+"/pools/"+url.PathEscape(got.Records[0].PoolNo)+"/numbers", &nums); status != 200 || nums.Total != got.Records[0].NumberCount {
		t.Fatalf("GET numbers: %d %+v", status, nums)
	}
	bin.TakesNoEvents(t, base, out, onFC)
}

func TestLambda(t *testing.T) {
	api := bin.StartLambda(t, emulatortest.NewServer(t).VolcengineEnv())
	var got pools.Response
	if status := functiontest.InvokeGET(t, api, "/pools", "serviceType=200&limit=2", &got); status != 200 || len(got.Records) != 2 || got.Records[0].ServiceType != 200 {
		t.Errorf("GET /pools on Lambda: %d %+v", status, got)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := testutil.Env{volcengine.EnvAccessKey: emulator.DefaultAccessKeyID, volcengine.EnvSecretKey: emulator.DefaultAccessKeySecret}
	for _, tc := range []struct{ name, variable, value string }{
		{"no secret", volcengine.EnvSecretKey, ""},
		{"bad endpoint", volcengine.EnvEndpoint, "ftp://x"},
		{"bad region", volcengine.EnvRegion, "cn beijing"},
		{"bad log level", config.LogLevel, "loud"},
		{"bad NATS URL", config.NATSURL, "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) { bin.Refuses(t, ok.With(tc.variable, tc.value), tc.variable) })
	}
}

// On FC's go1 runtime (FC_RUNTIME_API) the same binary answers the runtime
// API's HTTP-trigger invocations through its routes.
func TestFCGo1(t *testing.T) {
	out := &testutil.SyncBuffer{}
	api := bin.StartGo1(t, emulatortest.NewServer(t).VolcengineEnv(), out)

	resp := api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-pools-1", Payload: fcgo1test.HTTPEvent("GET", "/pools?limit=2&serviceType=200", nil, "")}).HTTP(t)
	var got pools.Response
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &got) != nil || len(got.Records) != 2 || got.Records[0].ServiceType != 200 {
		t.Fatalf("GET /pools on go1: %+v", resp)
	}
	resp = api.Invoke(t, fcgo1test.Invocation{Payload: fcgo1test.HTTPEvent("GET", "/pools/"+url.PathEscape(got.Records[0].PoolNo)+"/numbers", nil, "")}).HTTP(t)
	var nums pools.NumbersResponse
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &nums) != nil || nums.Total != got.Records[0].NumberCount {
		t.Fatalf("GET numbers on go1: %+v", resp)
	}
	resp = api.Invoke(t, fcgo1test.Invocation{Payload: fcgo1test.HTTPEvent("GET", "/pools?limit=1000", nil, "")}).HTTP(t)
	if resp.StatusCode != 400 || !strings.Contains(resp.Body, `"code":"InvalidParameter"`) {
		t.Errorf("a bad limit on go1: %+v", resp)
	}
	if res := api.Invoke(t, fcgo1test.Invocation{Type: fcgo1.TypePreStop}); res.Kind != "response" {
		t.Errorf("preStop: %s %s", res.Kind, res.Body)
	}
	if !strings.Contains(out.String(), "FC Invoke End RequestId: go1-pools-1\n") {
		t.Errorf("stdout lacks the markers:\n%s", out.String())
	}
}
