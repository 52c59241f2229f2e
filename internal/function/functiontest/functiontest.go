// Package functiontest runs a function binary's wiring in a test as its
// main would run it: under FC's custom runtime contract on a loopback port,
// or against an emulated AWS Lambda Runtime API.
package functiontest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/internal/trigger/lambda"
	"github.com/xnum-dev/xnum/internal/trigger/lambda/lambdatest"
)

// Binary is what a functions/*/main.go hands function.Main.
type Binary struct {
	Name string
	Wire function.Wire
}

// Run is the binary's main with env as its environment and stdout as its
// standard output.
func (b Binary) Run(ctx context.Context, env testutil.Env, stdout io.Writer, opts ...function.Option) error {
	return function.Run(ctx, b.Name, env.Lookup, stdout, b.Wire, opts...)
}

// Start serves the binary under FC's contract on a loopback port until the
// test ends, and returns its base URL. The test fails if the binary stops
// with an error.
func (b Binary) Start(t testing.TB, env testutil.Env, stdout io.Writer) string {
	t.Helper()
	return testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return b.Run(ctx, env, stdout, function.WithListener(ln))
	}).URL
}

// StartLambda runs the binary on Lambda, against a new emulated Runtime API,
// until the test ends, and returns the API to invoke it through. The test
// fails if the binary stops with an error.
func (b Binary) StartLambda(t testing.TB, env testutil.Env) *lambdatest.RuntimeAPI {
	t.Helper()
	api := lambdatest.NewRuntimeAPI()
	// aws-lambda-go reads the process's environment, the binary env.
	t.Setenv(lambda.RuntimeAPIEnv, api.Addr())
	env = env.With(lambda.RuntimeAPIEnv, api.Addr())
	testutil.Run(t, func(ctx context.Context) error { return b.Run(ctx, env, io.Discard) })
	return api
}

// StartGo1 runs the binary on FC's go1 runtime, against a new emulated
// runtime API, its standard output to stdout, until the test ends, and
// returns the API to invoke it through. The test fails if the binary stops
// with an error.
func (b Binary) StartGo1(t testing.TB, env testutil.Env, stdout io.Writer) *fcgo1test.RuntimeAPI {
	t.Helper()
	api := fcgo1test.NewRuntimeAPI(t)
	env = env.With(fcgo1.RuntimeAPIEnv, api.Addr())
	testutil.Run(t, func(ctx context.Context) error { return b.Run(ctx, env, stdout) })
	return api
}

// Serve serves fn as the function binaries do on FC (function.Serve, FC's
// variables set so its contract is honoured, without NATS) on a loopback port until the test ends, its log
// lines to logs, and returns its base URL.
func Serve(t testing.TB, fn trigger.Function, logs io.Writer) string {
	t.Helper()
	return testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return function.Serve(ctx, fn, function.WithListener(ln), function.WithStdout(io.Discard),
			function.WithLogger(logging.New(logs, logging.Options{Function: fn.Name})),
			function.WithLookup(testutil.Env{}.With(testutil.OnFC...).Lookup))
	}).URL
}

// Refuses runs the binary with env and checks that it stops at once with
// an error naming variable (an *envvar.Error) that shows no secret of env.
func (b Binary) Refuses(t testing.TB, env testutil.Env, variable string) {
	t.Helper()
	testutil.WantEnvError(t, b.Run(context.Background(), env, io.Discard), variable, env)
}

// TakesNoEvents checks that the binary served at base, writing its standard
// output to stdout, takes no events: on FC (onFC) an event invocation is
// FC's function error (404, x-fc-status 404, InvalidParameter) between FC's
// log markers; off FC, /invoke is only an unknown route (404 NotFound, no
// markers). Its log lines carry its name either way.
func (b Binary) TakesNoEvents(t testing.TB, base string, stdout *testutil.SyncBuffer, onFC bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/invoke", strings.NewReader(`{"a":1}`))
	req.Header.Set("x-fc-request-id", "fc-ev-1")
	resp, err := http.DefaultClient.Do(req)
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
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("x-fc-status") != wantStatus || eb.Error.Code != wantCode {
		t.Errorf("POST /invoke: %d, x-fc-status %q, %+v; want 404, %q, %s", resp.StatusCode, resp.Header.Get("x-fc-status"), eb, wantStatus, wantCode)
	}
	out := stdout.String()
	if marked := strings.Contains(out, "FC Invoke Start RequestId: fc-ev-1"); marked != onFC || !strings.Contains(out, `"function":"`+b.Name+`"`) {
		t.Errorf("FC markers (want %v) or JSON logs:\n%s", onFC, out)
	}
}

// GetJSON GETs url, decodes its JSON answer into v and returns the status.
func GetJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %d, body not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// InvokeGET invokes the binary on Lambda with an API Gateway HTTP API (or
// function URL) event of GET path?rawQuery, decodes the answer's body into v
// and returns its status.
func InvokeGET(t testing.TB, api *lambdatest.RuntimeAPI, path, rawQuery string, v any) int {
	t.Helper()
	event, _ := json.Marshal(map[string]any{
		"version": "2.0", "routeKey": "GET " + path, "rawPath": path, "rawQueryString": rawQuery,
		"headers":         map[string]string{"accept": "*/*"},
		"requestContext":  map[string]any{"http": map[string]string{"method": "GET", "path": path, "sourceIp": "192.0.2.1"}, "requestId": "apigw-1"},
		"isBase64Encoded": false,
	})
	res := api.Invoke(t, event)
	var resp struct {
		StatusCode int
		Body       string
	}
	if res.Kind != "response" || json.Unmarshal(res.Body, &resp) != nil {
		t.Fatalf("Lambda answer: %s %s", res.Kind, res.Body)
	}
	if err := json.Unmarshal([]byte(resp.Body), v); err != nil {
		t.Fatalf("Lambda answer %d, body not JSON: %s", resp.StatusCode, resp.Body)
	}
	return resp.StatusCode
}
