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
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/metrics/metricstest"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/internal/trigger/lambda/lambdatest"
	"github.com/xnum-dev/xnum/pkg/provider"
)

func get(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricsLines are the invocation metrics lines FCLine wrote in out.
func metricsLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == metrics.FCLineMsg {
			lines = append(lines, m)
		}
	}
	return lines
}

// On FC each invocation writes one metrics line to stdout, and the
// function's port has no /metrics; off FC nothing is written.
func TestMetricsLinePerFCInvocation(t *testing.T) {
	var preStops atomic.Int32
	for _, c := range []struct {
		name  string
		env   map[string]string
		lines int
	}{
		{"on FC", with(nil, testutil.OnFC...), 2},
		{"elsewhere", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout := &testutil.SyncBuffer{}
			r := run(t, pingFunction(&preStops), function.WithLookup(env(c.env)), function.WithStdout(stdout),
				function.WithMetrics(metrics.New(), ""))
			get(t, r.url+"/ping", "x-fc-request-id", "fc-ping-1")
			get(t, r.url+"/ping", "x-fc-request-id", "fc-ping-2")
			get(t, r.url+"/healthz")
			if code, _ := get(t, r.url+"/metrics"); code != 404 {
				t.Errorf("GET /metrics on the function's port: %d, want 404", code)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			lines := metricsLines(t, stdout.String())
			if len(lines) != c.lines {
				t.Fatalf("%d metrics lines, want %d:\n%s", len(lines), c.lines, stdout.String())
			}
			for i, l := range lines {
				if l["requestId"] != "fc-ping-"+strconv.Itoa(i+1) || l["function"] != "ping" {
					t.Errorf("line %v", l)
				}
			}
		})
	}
}

// FC's go1 runtime writes the same line per invocation.
func TestMetricsLineOnFCGo1(t *testing.T) {
	api := fcgo1test.NewRuntimeAPI(t)
	var preStops atomic.Int32
	stdout := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	fn := pingFunction(&preStops)
	fn.Services = nil
	go func() {
		done <- function.Serve(ctx, fn, function.WithStdout(stdout), function.WithMetrics(metrics.New(), ""),
			function.WithLookup(env(map[string]string{fcgo1.RuntimeAPIEnv: api.Addr()})),
			function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})))
	}()
	api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-m-1", Payload: fcgo1test.HTTPEvent("GET", "/ping", nil, "")})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lines := metricsLines(t, stdout.String()); len(lines) != 1 || lines[0]["requestId"] != "go1-m-1" {
		t.Errorf("metrics lines %v:\n%s", lines, stdout.String())
	}
}

// On Lambda each invocation writes EMF lines to stdout.
func TestEMFOnLambda(t *testing.T) {
	api := lambdatest.NewRuntimeAPI()
	t.Setenv("AWS_LAMBDA_RUNTIME_API", api.Addr())
	var preStops atomic.Int32
	stdout := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- function.Serve(ctx, pingFunction(&preStops), function.WithStdout(stdout), function.WithMetrics(metrics.New(), ""),
			function.WithLogger(logging.New(&testutil.SyncBuffer{}, logging.Options{})))
	}()
	event := []byte(`{"version":"2.0","rawPath":"/ping","headers":{},"requestContext":{"http":{"method":"GET","path":"/ping"},"requestId":"r"},"isBase64Encoded":false}`)
	api.Invoke(t, event)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &doc); err != nil || doc["_aws"] == nil ||
		doc["function"] != "ping" || doc["requestId"] != "lambda-req-1" {
		t.Errorf("EMF line %s: %v", stdout.String(), err)
	}
}

// XNUM_METRICS_ADDR serves /metrics, /healthz and /readyz on a listener of
// their own; /readyz fails while NATS is away or the function is not ready.
func TestOpsEndpoints(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(port)

	var preStops atomic.Int32
	var notReady atomic.Bool
	fn := pingFunction(&preStops)
	fn.Ready = func(context.Context) error {
		if notReady.Load() {
			return errors.New("the queue is gone")
		}
		return nil
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	r := run(t, fn, function.WithLookup(env(nil)), function.WithMetrics(m, ""), function.WithMetricsListener(ops),
		function.WithNATSURL(natsURL, nats.ReconnectWait(20*time.Millisecond), nats.Timeout(200*time.Millisecond)))
	opsURL := "http://" + ops.Addr().String()

	if code, body := get(t, opsURL+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, opsURL+"/readyz"); code != 503 || !strings.Contains(body, "NATS") || !strings.Contains(body, `"code":"Unavailable"`) {
		t.Errorf("/readyz with NATS away: %d %s", code, body)
	}
	embednats.RunTest(t, embednats.WithPort(port))
	testutil.WaitFor(t, "/readyz to answer 200 with NATS up", func() bool {
		code, _ := get(t, opsURL+"/readyz")
		return code == 200
	})
	notReady.Store(true)
	if code, body := get(t, opsURL+"/readyz"); code != 503 || !strings.Contains(body, "the queue is gone") {
		t.Errorf("/readyz with the function not ready: %d %s", code, body)
	}
	m.ObserveCall(context.Background(), metricsCall)
	if got := metricstest.Scrape(t, opsURL+"/metrics"); !got.Has("xnum_provider_requests_total") || !got.Has("go_goroutines") {
		t.Errorf("/metrics lacks the instruments: %v", got)
	}
	if code, _ := get(t, r.url+"/metrics"); code != 404 {
		t.Errorf("/metrics on the function's routes: %d, want 404", code)
	}
}

var metricsCall = provider.Call{Provider: "aliyun", Action: "QuerySecretNoRemain", Code: "OK", Took: time.Millisecond}
