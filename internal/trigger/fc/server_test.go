package fc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
	"github.com/xnum-dev/xnum/pkg/provider"
)

const (
	stsID     = "STS.NUxyzKeyId"
	stsSecret = "StsSecretMustNotLeak"
	stsToken  = "CAISStsTokenMustNotLeak"
)

// recorder is a function whose handlers record what they saw.
type recorder struct {
	mu      sync.Mutex
	creds   []provider.Credentials
	msgs    []trigger.Message
	ids     []string
	fail    map[string]error // by message id
	inits   int
	preStop error
}

func (r *recorder) function() trigger.Function {
	mux := httpjson.NewMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, req *http.Request) {
		c, _ := provider.CredentialsFromContext(req.Context())
		r.mu.Lock()
		r.creds = append(r.creds, c)
		r.mu.Unlock()
		httpjson.Write(w, http.StatusOK, map[string]any{
			"requestId":     logging.RequestID(req.Context()),
			"secretHeader":  req.Header.Get(fc.HeaderAccessKeySecret),
			"tokenHeader":   req.Header.Get(fc.HeaderSecurityToken),
			"keyIdHeader":   req.Header.Get(fc.HeaderAccessKeyID),
			"controlHeader": req.Header.Get(fc.HeaderControlPath),
		})
	})
	return trigger.Function{
		Name: "test",
		HTTP: mux,
		Events: trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			c, _ := provider.CredentialsFromContext(ctx)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.creds = append(r.creds, c)
			r.ids = append(r.ids, logging.RequestID(ctx))
			r.msgs = append(r.msgs, msgs...)
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				errs[i] = r.fail[m.ID]
			}
			return errs
		}),
		Initialize: func(context.Context) error {
			r.mu.Lock()
			r.inits++
			r.mu.Unlock()
			return nil
		},
		PreStop: func(context.Context) error { return r.preStop },
	}
}

type harness struct {
	url    string
	logs   *testutil.SyncBuffer
	stdout *testutil.SyncBuffer
	rec    *recorder
	stop   func() error
}

// start serves fn as on FC (its contract honoured) unless opts say
// otherwise.
func start(t *testing.T, fn func(*recorder) trigger.Function, opts ...fc.Option) *harness {
	t.Helper()
	h := &harness{logs: &testutil.SyncBuffer{}, stdout: &testutil.SyncBuffer{}, rec: &recorder{fail: map[string]error{}}}
	opts = append([]fc.Option{fc.WithLogger(logging.New(h.logs, logging.Options{Level: slog.LevelDebug, Function: "test"})), fc.WithStdout(h.stdout), fc.WithContract(true)}, opts...)
	served := testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		srv, err := fc.New(fn(h.rec), append(opts, fc.WithListener(ln))...)
		if err != nil {
			return err
		}
		return srv.Serve(ctx)
	})
	h.url, h.stop = served.URL, served.Stop
	return h
}

func do(t *testing.T, method, url string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	var pairs []string
	for k, v := range headers {
		pairs = append(pairs, k, v)
	}
	return testutil.Do(t, method, url, string(body), pairs...)
}

func stsHeaders(requestID string) map[string]string {
	return map[string]string{
		"x-fc-request-id":        requestID,
		"x-fc-access-key-id":     stsID,
		"x-fc-access-key-secret": stsSecret,
		"x-fc-security-token":    stsToken,
		"Content-Type":           "application/octet-stream",
	}
}

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{stsSecret, stsToken} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret:\n%s", where, s)
		}
	}
}

func TestEventInvocationWithSTS(t *testing.T) {
	h := start(t, (*recorder).function)
	payload := readTestdata(t, "mns-stream.json")
	resp, body := do(t, "POST", h.url+"/invoke", payload, stsHeaders("fc-req-1"))
	if resp.StatusCode != 200 || resp.Header.Get(fc.HeaderStatus) != "200" {
		t.Fatalf("status %d x-fc-status %q body %s", resp.StatusCode, resp.Header.Get(fc.HeaderStatus), body)
	}
	if resp.Header.Get("X-Request-Id") != "fc-req-1" {
		t.Errorf("X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
	}
	var res struct{ Messages int }
	if err := json.Unmarshal(body, &res); err != nil || res.Messages != 2 {
		t.Errorf("body = %s", body)
	}
	h.rec.mu.Lock()
	creds, msgs, ids := h.rec.creds, h.rec.msgs, h.rec.ids
	h.rec.mu.Unlock()
	want := provider.Credentials{AccessKeyID: stsID, AccessKeySecret: stsSecret, SecurityToken: stsToken}
	if len(creds) != 1 || creds[0] != want {
		t.Errorf("handler saw credentials %v, want %v", creds, want)
	}
	if len(ids) != 1 || ids[0] != "fc-req-1" {
		t.Errorf("handler saw request ids %v", ids)
	}
	if len(msgs) != 2 || orderID(t, msgs[0].Body) != "ord-mns-2" || orderID(t, msgs[1].Body) != "ord-mns-3" {
		t.Errorf("handler saw %+v", msgs)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	out := h.stdout.String()
	if !strings.Contains(out, "FC Invoke Start RequestId: fc-req-1\n") || !strings.Contains(out, "FC Invoke End RequestId: fc-req-1\n") {
		t.Errorf("stdout lacks the FC markers:\n%s", out)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"requestId":"fc-req-1"`) {
		t.Errorf("logs lack the request id:\n%s", logs)
	}
	assertNoSecret(t, "logs", logs+out)
	assertNoSecret(t, "response", string(body))
}

func TestEventKinds(t *testing.T) {
	h := start(t, (*recorder).function)
	for _, tc := range []struct {
		file   string
		source string
		n      int
	}{
		{"mns-event.json", trigger.SourceMNS, 1},
		{"rocketmq-stream.json", trigger.SourceRocketMQ, 2},
		{"kafka-stream.json", trigger.SourceKafka, 2},
		{"timer.json", trigger.SourceTimer, 1},
		{"xnum-cloudevent.json", trigger.SourceDirect, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			h.rec.mu.Lock()
			h.rec.msgs = nil
			h.rec.mu.Unlock()
			// FC marks event invocations with x-fc-control-path; without it
			// (a local run) the path decides.
			for _, headers := range []map[string]string{{"x-fc-control-path": "/invoke"}, nil} {
				resp, body := do(t, "POST", h.url+"/invoke", readTestdata(t, tc.file), headers)
				if resp.StatusCode != 200 || resp.Header.Get(fc.HeaderStatus) != "200" {
					t.Fatalf("status %d body %s", resp.StatusCode, body)
				}
			}
			h.rec.mu.Lock()
			defer h.rec.mu.Unlock()
			if len(h.rec.msgs) != 2*tc.n {
				t.Fatalf("handler saw %d messages, want %d", len(h.rec.msgs), 2*tc.n)
			}
			for _, m := range h.rec.msgs {
				if m.Source != tc.source {
					t.Errorf("source %q, want %q", m.Source, tc.source)
				}
			}
		})
	}
}

func TestEventFailureIsFunctionError(t *testing.T) {
	h := start(t, (*recorder).function)
	h.rec.fail["D6DB60D1574661357FA227277445****"] = &provider.Error{Kind: provider.ErrUnavailable, Message: "queue unreachable"}
	resp, body := do(t, "POST", h.url+"/invoke", readTestdata(t, "mns-stream.json"), stsHeaders("fc-req-2"))
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" {
		t.Fatalf("status %d x-fc-status %q, want 404/404", resp.StatusCode, resp.Header.Get(fc.HeaderStatus))
	}
	var eb httpjson.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != "Unavailable" || eb.Error.RequestID != "fc-req-2" || eb.Error.Message != "queue unreachable" {
		t.Errorf("error body = %s", body)
	}
	assertNoSecret(t, "response", string(body))
	assertNoSecret(t, "logs", h.logs.String())
}

func TestEventHandlerPanic(t *testing.T) {
	h := start(t, func(r *recorder) trigger.Function {
		f := r.function()
		f.Events = trigger.EventHandlerFunc(func(context.Context, []trigger.Message) []error { panic("kaput") })
		return f
	})
	resp, body := do(t, "POST", h.url+"/invoke", []byte(`{"a":1}`), map[string]string{"x-fc-request-id": "fc-panic"})
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" || !strings.Contains(string(body), `"Internal"`) {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	// The server goes on.
	if resp, _ := do(t, "GET", h.url+"/hello", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after a panic: %d", resp.StatusCode)
	}
}

func TestNoEventHandler(t *testing.T) {
	h := start(t, func(r *recorder) trigger.Function {
		f := r.function()
		f.Events = nil
		return f
	})
	resp, body := do(t, "POST", h.url+"/invoke", []byte(`{"a":1}`), nil)
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" || !strings.Contains(string(body), `"InvalidParameter"`) {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
}

func TestHTTPTrigger(t *testing.T) {
	h := start(t, (*recorder).function)
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
	}{
		{"route with STS", "GET", "/hello", stsHeaders("fc-http-1"), 200},
		{"route via http-invoke", "GET", "/hello", map[string]string{"x-fc-control-path": "/http-invoke"}, 200},
		{"invoke path over http trigger is a route", "POST", "/invoke", map[string]string{"x-fc-control-path": "/http-invoke"}, 404},
		{"unknown", "GET", "/nope", nil, 404},
		{"wrong method", "POST", "/hello", nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, h.url+tc.path, nil, tc.headers)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get(fc.HeaderStatus) != "" {
				t.Errorf("an HTTP-trigger answer carries x-fc-status")
			}
			assertNoSecret(t, "response", string(body))
			if tc.status != 200 {
				var eb httpjson.ErrorBody
				if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" || eb.Error.RequestID == "" {
					t.Errorf("error body = %s", body)
				}
			}
		})
	}
	if out := h.stdout.String(); !strings.Contains(out, "FC Invoke Start RequestId: fc-http-1\n") || !strings.Contains(out, "FC Invoke End RequestId: fc-http-1\n") {
		t.Errorf("an HTTP-trigger request on FC lacks the markers:\n%s", out)
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if len(h.rec.creds) != 2 || h.rec.creds[0].SecurityToken != stsToken || h.rec.creds[1].AccessKeyID != "" {
		t.Errorf("credentials seen by the route: %v", h.rec.creds)
	}
	assertNoSecret(t, "logs", h.logs.String())
}

func TestLifecycleHooks(t *testing.T) {
	h := start(t, (*recorder).function)
	resp, _ := do(t, "POST", h.url+"/initialize", nil, map[string]string{"x-fc-request-id": "init-1"})
	if resp.StatusCode != 200 || resp.Header.Get(fc.HeaderStatus) != "200" {
		t.Fatalf("initialize: %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", h.url+"/pre-freeze", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("pre-freeze: %d", resp.StatusCode)
	}
	h.rec.mu.Lock()
	h.rec.preStop = errors.New("flush failed")
	inits := h.rec.inits
	h.rec.mu.Unlock()
	if inits != 1 {
		t.Errorf("initializer ran %d times", inits)
	}
	resp, body := do(t, "GET", h.url+"/pre-stop", nil, nil)
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" {
		t.Fatalf("failing pre-stop: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(h.stdout.String(), "FC Initialize Start RequestId: init-1") {
		t.Errorf("no initialize marker:\n%s", h.stdout.String())
	}
}

func TestPreStopOption(t *testing.T) {
	called := make(chan struct{}, 1)
	h := start(t, (*recorder).function, fc.WithPreStop(func(context.Context) error { called <- struct{}{}; return nil }))
	resp, _ := do(t, "GET", h.url+"/pre-stop", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("pre-stop: %d", resp.StatusCode)
	}
	select {
	case <-called:
	default:
		t.Fatal("the pre-stop option was not run")
	}
}

func TestGracefulShutdownDrains(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := start(t, func(*recorder) trigger.Function {
		return trigger.Function{Name: "slow", HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			if r.Context().Err() != nil {
				http.Error(w, "cancelled", 500)
				return
			}
			httpjson.Write(w, 200, map[string]bool{"ok": true})
		})}
	})
	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(h.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	// Release the handler only once the server has stopped accepting, so
	// the request is really in flight during the drain.
	addr := strings.TrimPrefix(h.url, "http://")
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if r := <-got; r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(h.url + "/slow"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

// Off FC nothing of FC's contract exists: each of its surfaces is the
// function's routes' (404 for the control paths) and every x-fc-* header is
// dropped unread; on FC each works (the tests above).
func TestOffFCTheContractDoesNotExist(t *testing.T) {
	var preStops atomic.Int32
	h := start(t, (*recorder).function, fc.WithContract(false), fc.WithPreStop(func(context.Context) error { preStops.Add(1); return nil }))
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    string
		headers map[string]string
		status  int
	}{
		{"event path", "POST", "/invoke", `{"orderId":"o-1"}`, nil, 404},
		{"event path with FC's headers", "POST", "/invoke", `{"orderId":"o-1"}`, map[string]string{"x-fc-control-path": "/invoke", "x-fc-request-id": "fake-1"}, 404},
		{"control header on a route", "GET", "/hello", "", map[string]string{"x-fc-control-path": "/invoke"}, 200},
		{"control header to pre-stop", "GET", "/hello", "", map[string]string{"x-fc-control-path": "/pre-stop"}, 200},
		{"initialize hook", "POST", "/initialize", "", nil, 404},
		{"pre-stop hook", "GET", "/pre-stop", "", map[string]string{"x-fc-control-path": "/pre-stop"}, 404},
		{"pre-freeze hook", "GET", "/pre-freeze", "", nil, 404},
		{"credentials and request id", "GET", "/hello", "", stsHeaders("fake-2"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, h.url+tc.path, []byte(tc.body), tc.headers)
			if resp.StatusCode != tc.status || resp.Header.Get(fc.HeaderStatus) != "" {
				t.Fatalf("status %d x-fc-status %q, want %d and none: %s", resp.StatusCode, resp.Header.Get(fc.HeaderStatus), tc.status, body)
			}
			if id := resp.Header.Get("X-Request-Id"); strings.HasPrefix(id, "fake-") {
				t.Errorf("the caller's x-fc-request-id became the request id %q", id)
			}
			if tc.status == 200 {
				var seen map[string]string
				if json.Unmarshal(body, &seen) != nil || seen["secretHeader"] != "" || seen["tokenHeader"] != "" || seen["keyIdHeader"] != "" || seen["controlHeader"] != "" {
					t.Errorf("the route saw FC's headers: %s", body)
				}
			}
			assertNoSecret(t, "response", string(body))
		})
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if len(h.rec.msgs) != 0 || h.rec.inits != 0 || preStops.Load() != 0 {
		t.Errorf("off FC: %d event messages handled, %d initializers, %d pre-stops run", len(h.rec.msgs), h.rec.inits, preStops.Load())
	}
	for _, c := range h.rec.creds {
		if c != (provider.Credentials{}) {
			t.Errorf("a route got a caller's credentials: %+v", c)
		}
	}
	if out := h.stdout.String(); out != "" {
		t.Errorf("FC's markers off FC:\n%s", out)
	}
	if logs := h.logs.String(); strings.Contains(logs, "fake-") {
		t.Errorf("a caller's x-fc-request-id reached the logs:\n%s", logs)
	}
	assertNoSecret(t, "logs", h.logs.String())
}

// FC's health check (GET /healthz) is answered by the runtime, unlogged,
// whatever the function's routes are.
func TestHealthCheck(t *testing.T) {
	h := start(t, (*recorder).function)
	for _, method := range []string{"GET", "HEAD"} {
		resp, body := do(t, method, h.url+fc.HealthPath, nil, nil)
		if resp.StatusCode != 200 || (method == "GET" && !strings.Contains(string(body), `"ok"`)) {
			t.Errorf("%s %s: %d %s", method, fc.HealthPath, resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, "POST", h.url+fc.HealthPath, nil, nil); resp.StatusCode != 404 {
		t.Errorf("POST %s: %d, want the routes' 404", fc.HealthPath, resp.StatusCode)
	}
	if strings.Contains(h.logs.String(), `"path":"/healthz","status":200`) {
		t.Errorf("the health check is in the access log:\n%s", h.logs.String())
	}
}

// WithAround runs around event invocations and requests to the routes,
// with the invocation's request id and trace, and not around the
// lifecycle hooks or the health check.
func TestAround(t *testing.T) {
	type key struct{}
	var (
		mu   sync.Mutex
		seen []string
	)
	around := func(ctx context.Context) (context.Context, func()) {
		tc, traced := traceparent.From(ctx)
		return context.WithValue(ctx, key{}, "around"), func() {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("%s traced=%v", logging.RequestID(ctx), traced && tc.Valid()))
		}
	}
	h := start(t, func(r *recorder) trigger.Function {
		fn := r.function()
		events := fn.Events
		fn.Events = trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			if ctx.Value(key{}) != "around" {
				t.Error("the event handler does not run in the context Around returned")
			}
			return events.HandleEvents(ctx, msgs)
		})
		return fn
	}, fc.WithAround(around))
	do(t, "POST", h.url+"/invoke", []byte(`{"orderId":"x"}`), map[string]string{"x-fc-request-id": "inv-1"})
	do(t, "GET", h.url+"/hello", nil, map[string]string{"x-fc-request-id": "http-1"})
	do(t, "POST", h.url+"/initialize", nil, map[string]string{"x-fc-request-id": "init-1"})
	do(t, "GET", h.url+"/pre-freeze", nil, map[string]string{"x-fc-request-id": "freeze-1"})
	do(t, "GET", h.url+fc.HealthPath, nil, map[string]string{"x-fc-request-id": "health-1"})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"inv-1 traced=true", "http-1 traced=true"}; !slices.Equal(seen, want) {
		t.Errorf("around ran for %q, want %q", seen, want)
	}
}
