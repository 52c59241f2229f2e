package function_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/internal/trigger/lambda/lambdatest"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc/natsrpctest"
)

// pingFunction answers GET /ping over HTTP and xnum.test.ping over NATS, and
// counts its pre-stop runs.
func pingFunction(preStops *atomic.Int32) trigger.Function {
	mux := httpjson.NewMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"pong": "http"})
	})
	return trigger.Function{
		Name: "ping",
		HTTP: mux,
		Services: []trigger.Service{{Name: "xnum-ping", Version: "1.0.0", Endpoints: []trigger.Endpoint{{
			Name: "ping", Subject: "xnum.test.ping",
			Handle: func(context.Context, []byte) (any, error) { return map[string]string{"pong": "nats"}, nil },
		}}}},
		PreStop: func(context.Context) error { preStops.Add(1); return nil },
	}
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

type running struct {
	url  string
	stop func() error
}

func run(t *testing.T, fn trigger.Function, opts ...function.Option) running {
	t.Helper()
	opts = append([]function.Option{function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})), function.WithStdout(io.Discard)}, opts...)
	s := testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return function.Serve(ctx, fn, append(opts, function.WithListener(ln))...)
	})
	return running{url: s.URL, stop: s.Stop}
}

func getPing(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out["pong"]
}

// natsPing connects to url and asks the service until it answers, within a
// bound: the service registers in the background. The connection closes
// with the test.
func natsPing(t *testing.T, url string) (string, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var out map[string]string
	if err := natsrpctest.Request(t, nc, "xnum.test.ping", struct{}{}, &out); err != nil {
		t.Fatalf("no NATS answer: %v", err)
	}
	return out["pong"], nc
}

func TestHTTPWithoutNATS(t *testing.T) {
	var preStops atomic.Int32
	r := run(t, pingFunction(&preStops), function.WithLookup(env(nil)))
	if got := getPing(t, r.url); got != "http" {
		t.Fatalf("GET /ping = %q", got)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if preStops.Load() != 1 {
		t.Errorf("pre-stop ran %d times", preStops.Load())
	}
}

func TestHTTPAndNATS(t *testing.T) {
	ns := embednats.RunTest(t)
	var preStops atomic.Int32
	r := run(t, pingFunction(&preStops), function.WithLookup(env(nil)), function.WithNATSURL(ns.ClientURL()))
	got, client := natsPing(t, ns.ClientURL())
	if got != "nats" {
		t.Fatalf("NATS ping = %q", got)
	}
	if got := getPing(t, r.url); got != "http" {
		t.Fatalf("GET /ping = %q", got)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// The service is gone with Run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := natsrpc.Request(ctx, client, "xnum.test.ping", struct{}{}, nil); err == nil {
		t.Error("the NATS service still answers after Run returned")
	}
}

// TestNATSLate starts the function while NATS is down: HTTP serves at once,
// and the services answer once NATS comes up.
func TestNATSLate(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var preStops atomic.Int32
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	r := run(t, pingFunction(&preStops), function.WithLookup(env(nil)),
		function.WithNATSURL(url, nats.ReconnectWait(20*time.Millisecond), nats.Timeout(200*time.Millisecond)))
	if got := getPing(t, r.url); got != "http" {
		t.Fatalf("GET /ping with NATS down = %q", got)
	}
	ns := embednats.RunTest(t, embednats.WithPort(port))
	if got, _ := natsPing(t, ns.ClientURL()); got != "nats" {
		t.Fatalf("NATS ping = %q", got)
	}
}

func TestBackgroundFailureStops(t *testing.T) {
	var preStops atomic.Int32
	fn := pingFunction(&preStops)
	fn.Services = nil
	boom := errors.New("consumer lost")
	fn.Background = []func(context.Context) error{func(context.Context) error { return boom }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = function.Serve(context.Background(), fn, function.WithListener(ln), function.WithLookup(env(nil)),
		function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})), function.WithStdout(io.Discard))
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the background error", err)
	}
	if preStops.Load() != 1 {
		t.Errorf("pre-stop ran %d times", preStops.Load())
	}
}

func TestListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var preStops atomic.Int32
	err = function.Serve(context.Background(), pingFunction(&preStops), function.WithAddr(ln.Addr().String()), function.WithLookup(env(nil)),
		function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})), function.WithStdout(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a taken address = %v", err)
	}
}

// TestLambdaChosen checks that AWS_LAMBDA_RUNTIME_API picks Lambda: an
// invocation of the emulated Runtime API is answered through the function's
// HTTP routes.
func TestLambdaChosen(t *testing.T) {
	api := lambdatest.NewRuntimeAPI()
	t.Setenv("AWS_LAMBDA_RUNTIME_API", api.Addr())
	var preStops atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- function.Serve(ctx, pingFunction(&preStops), function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})))
	}()
	event := []byte(`{"version":"2.0","rawPath":"/ping","headers":{},"requestContext":{"http":{"method":"GET","path":"/ping"},"requestId":"r"},"isBase64Encoded":false}`)
	res := api.Invoke(t, event)
	if res.Kind != "response" || !strings.Contains(string(res.Body), `"statusCode":200`) || !strings.Contains(string(res.Body), `pong`) {
		t.Errorf("Lambda answer = %s %s", res.Kind, res.Body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if preStops.Load() != 1 {
		t.Errorf("pre-stop ran %d times", preStops.Load())
	}
}

// TestFCGo1Chosen checks that FC_RUNTIME_API picks FC's go1 runtime API:
// nothing listens, the runtime API's HTTP-trigger invocation is answered
// through the function's routes, the markers go to stdout once, and the
// NATS services still run.
func TestFCGo1Chosen(t *testing.T) {
	ns := embednats.RunTest(t)
	api := fcgo1test.NewRuntimeAPI(t)
	// A taken address: Serve fails if it tries to listen.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var preStops atomic.Int32
	stdout := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- function.Serve(ctx, pingFunction(&preStops), function.WithAddr(taken.Addr().String()), function.WithStdout(stdout),
			function.WithLookup(env(map[string]string{fcgo1.RuntimeAPIEnv: api.Addr()})), function.WithNATSURL(ns.ClientURL()),
			function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})))
	}()
	resp := api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-ping", Payload: fcgo1test.HTTPEvent("GET", "/ping", nil, "")}).HTTP(t)
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"pong":"http"`) {
		t.Errorf("go1 answer = %+v", resp)
	}
	if got, _ := natsPing(t, ns.ClientURL()); got != "nats" {
		t.Errorf("NATS ping = %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stdout.String(), "FC Invoke Start RequestId: go1-ping\n"); n != 1 {
		t.Errorf("%d start markers for one invocation:\n%s", n, stdout.String())
	}
	if preStops.Load() != 1 {
		t.Errorf("pre-stop ran %d times", preStops.Load())
	}
}
