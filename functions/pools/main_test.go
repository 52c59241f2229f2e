package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/httpjson"
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

	resp, err := http.Get(base + "/pools?limit=3")
	if err != nil {
		t.Fatal(err)
	}
	var got pools.Response
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || got.Provider != "volcengine" || len(got.Records) != 3 || got.Total <= 3 {
		t.Fatalf("GET /pools: %d %+v %v", resp.StatusCode, got, err)
	}
	resp, err = http.Get(base + "/pools/" + url.PathEscape(got.Records[0].PoolNo) + "/numbers")
	if err != nil {
		t.Fatal(err)
	}
	var nums pools.NumbersResponse
	err = json.NewDecoder(resp.Body).Decode(&nums)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || nums.Total != got.Records[0].NumberCount {
		t.Fatalf("GET numbers: %d %+v %v", resp.StatusCode, nums, err)
	}

	// pools takes no events: on FC an event invocation is a function error,
	// refused unread; off FC /invoke is no route.
	req, _ := http.NewRequest("POST", base+"/invoke", strings.NewReader(`{"a":1}`))
	req.Header.Set("x-fc-request-id", "fc-ev-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb httpjson.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	wantStatus, wantCode := "", "NotFound"
	if onFC {
		wantStatus, wantCode = "404", "InvalidParameter"
	}
	if resp.StatusCode != 404 || resp.Header.Get("x-fc-status") != wantStatus || eb.Error.Code != wantCode {
		t.Errorf("POST /invoke: %d %q %+v, want 404 %q %s", resp.StatusCode, resp.Header.Get("x-fc-status"), eb, wantStatus, wantCode)
	}
	if marked := strings.Contains(out.String(), "FC Invoke Start RequestId: fc-ev-1"); marked != onFC || !strings.Contains(out.String(), `"function":"pools"`) {
		t.Errorf("FC markers (want %v) or JSON logs:\n%s", onFC, out.String())
	}
}

func TestLambda(t *testing.T) {
	api := bin.StartLambda(t, emulatortest.NewServer(t).VolcengineEnv())

	event := `{"version":"2.0","rawPath":"/pools","rawQueryString":"serviceType=200&limit=2","headers":{"accept":"*/*"},"requestContext":{"http":{"method":"GET","path":"/pools","sourceIp":"1.2.3.4"},"requestId":"url-1"},"isBase64Encoded":false}`
	res := api.Invoke(t, []byte(event))
	var resp struct {
		StatusCode int
		Body       string
	}
	if res.Kind != "response" || json.Unmarshal(res.Body, &resp) != nil || resp.StatusCode != 200 {
		t.Fatalf("Lambda answer: %s %s", res.Kind, res.Body)
	}
	var got pools.Response
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || len(got.Records) != 2 || got.Records[0].ServiceType != 200 {
		t.Errorf("body %s", resp.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := testutil.Env{volcengine.EnvAccessKey: emulator.DefaultAccessKeyID, volcengine.EnvSecretKey: emulator.DefaultAccessKeySecret}
	for _, tc := range []struct {
		name string
		env  testutil.Env
		bad  string
	}{
		{"no secret", ok.With(volcengine.EnvSecretKey, ""), volcengine.EnvSecretKey},
		{"bad endpoint", ok.With(volcengine.EnvEndpoint, "ftp://x"), volcengine.EnvEndpoint},
		{"bad region", ok.With(volcengine.EnvRegion, "cn beijing"), volcengine.EnvRegion},
		{"bad log level", ok.With(config.LogLevel, "loud"), config.LogLevel},
		{"bad NATS URL", ok.With(config.NATSURL, "localhost"), config.NATSURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bin.Run(context.Background(), tc.env, io.Discard)
			var ee *envvar.Error
			if !errors.As(err, &ee) || ee.Var != tc.bad || strings.Contains(err.Error(), emulator.DefaultAccessKeySecret) {
				t.Fatalf("run = %v, want an error naming %s", err, tc.bad)
			}
		})
	}
}

// On FC's go1 runtime (FC_RUNTIME_API) the same binary answers the runtime
// API's HTTP-trigger invocations through its routes.
func TestFCGo1(t *testing.T) {
	api := fcgo1test.NewRuntimeAPI(t)
	out := &testutil.SyncBuffer{}
	env := testutil.Env(emulatortest.NewServer(t).VolcengineEnv()).With(fcgo1.RuntimeAPIEnv, api.Addr())
	testutil.Run(t, func(ctx context.Context) error { return bin.Run(ctx, env, out) })

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
