package function_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// DEBUG=sdk would make the Alibaba SDK print signed requests to stdout: the
// process refuses to start, before the function is wired, and says why.
func TestRunRefusesSDKDebug(t *testing.T) {
	wired := false
	wire := func(context.Context, function.Env) (trigger.Function, []function.Option, error) {
		wired = true
		return trigger.Function{}, nil, errors.New("wired")
	}
	err := function.Run(context.Background(), "remain", env(map[string]string{config.Debug: "sdk"}), io.Discard, wire)
	var ce *envvar.Error
	if !errors.As(err, &ce) || ce.Var != config.Debug || !strings.Contains(err.Error(), config.AllowSDKDebug) || wired {
		t.Fatalf("Run with DEBUG=sdk = %v (wired %v), want a refusal naming DEBUG and %s", err, wired, config.AllowSDKDebug)
	}
	err = function.Run(context.Background(), "remain", env(map[string]string{config.Debug: "sdk", config.AllowSDKDebug: "1"}), io.Discard, wire)
	if err == nil || err.Error() != "wired" || !wired {
		t.Fatalf("with %s=1 the function should be wired: %v", config.AllowSDKDebug, err)
	}
}

// eventFunction is pingFunction with an event handler that counts messages.
func eventFunction(preStops, events *atomic.Int32) trigger.Function {
	fn := pingFunction(preStops)
	fn.Services = nil
	fn.Events = trigger.EventHandlerFunc(func(_ context.Context, msgs []trigger.Message) []error {
		events.Add(int32(len(msgs)))
		return make([]error, len(msgs))
	})
	return fn
}

// Serve honours FC's contract where FC's variables say FC runs the process,
// and nowhere else: each surface on FC and off it.
func TestFCContractOnlyOnFC(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		onFC bool
	}{
		{"on FC", with(nil, testutil.OnFC...), true},
		{"off FC", nil, false},
		{"FC_FUNCTION_NAME alone is not FC", map[string]string{config.FCFunctionName: "xnum-buy"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var preStops, events atomic.Int32
			stdout := &testutil.SyncBuffer{}
			r := run(t, eventFunction(&preStops, &events), function.WithLookup(env(tc.env)), function.WithStdout(stdout))
			want := func(onFC, offFC int) int {
				if tc.onFC {
					return onFC
				}
				return offFC
			}
			for _, s := range []struct {
				method, path string
				header       map[string]string
				status       int
			}{
				{"POST", "/invoke", nil, want(200, 404)},
				{"GET", "/ping", map[string]string{"x-fc-control-path": "/invoke"}, want(200, 200)},
				{"POST", "/initialize", nil, want(200, 404)},
				{"GET", "/pre-freeze", nil, want(200, 404)},
				{"GET", "/pre-stop", nil, want(200, 404)},
				{"GET", "/ping", map[string]string{"x-fc-request-id": "fc-id-1"}, want(200, 200)},
			} {
				req, _ := http.NewRequest(s.method, r.url+s.path, strings.NewReader(`{"orderId":"o-1"}`))
				for k, v := range s.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != s.status {
					t.Errorf("%s %s %v: %d, want %d", s.method, s.path, s.header, resp.StatusCode, s.status)
				}
				if s.header["x-fc-request-id"] != "" && (resp.Header.Get("X-Request-Id") == "fc-id-1") != tc.onFC {
					t.Errorf("x-fc-request-id became the request id %q", resp.Header.Get("X-Request-Id"))
				}
			}
			// On FC: one event from /invoke (the control header on a route is
			// an HTTP trigger's request, as FC sends it), one pre-stop hook.
			if int(events.Load()) != want(2, 0) || int(preStops.Load()) != want(1, 0) {
				t.Errorf("events %d, pre-stops %d", events.Load(), preStops.Load())
			}
			if marked := strings.Contains(stdout.String(), "FC Invoke Start"); marked != tc.onFC {
				t.Errorf("FC markers %v, want %v:\n%s", marked, tc.onFC, stdout.String())
			}
		})
	}
}

// Without a listener Serve listens where config.LoadHTTPAddr says: loopback
// off FC, every interface on FC, XNUM_HTTP_ADDR when it is set.
func TestListenAddress(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port
	}
	for _, tc := range []struct {
		name string
		env  func(port string) map[string]string
		host string
	}{
		{"off FC", func(p string) map[string]string { return map[string]string{config.Port: p} }, "127.0.0.1"},
		{"on FC", func(p string) map[string]string {
			return with(with(nil, testutil.OnFC...), config.FCCustomListenPort, p)
		}, "0.0.0.0"},
		{"opened on purpose", func(p string) map[string]string { return map[string]string{config.HTTPAddr: "0.0.0.0:" + p} }, "0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := free()
			logs := &testutil.SyncBuffer{}
			var preStops atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- function.Serve(ctx, pingFunction(&preStops), function.WithLookup(env(tc.env(port))),
					function.WithLogger(logging.New(logs, logging.Options{})), function.WithStdout(io.Discard))
			}()
			// Go names a listener on every interface [::] (IPv4 and IPv6).
			want := map[string][]string{"127.0.0.1": {"127.0.0.1"}, "0.0.0.0": {"0.0.0.0", "::"}}[tc.host]
			found := func() bool {
				for _, h := range want {
					if strings.Contains(logs.String(), `"addr":"`+net.JoinHostPort(h, port)+`"`) {
						return true
					}
				}
				return false
			}
			for deadline := time.Now().Add(10 * time.Second); !found() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !found() {
				t.Fatalf("not listening on %s port %s:\n%s", tc.host, port, logs.String())
			}
		})
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// On FC, a NATS without TLS or credentials is called out at start.
func TestRunWarnsOfUnsecuredNATSOnFC(t *testing.T) {
	stop := errors.New("stop after the start")
	wire := func(context.Context, function.Env) (trigger.Function, []function.Option, error) {
		return trigger.Function{}, nil, stop
	}
	for _, tc := range []struct {
		env  map[string]string
		warn bool
	}{
		{with(with(nil, testutil.OnFC...), config.NATSURL, "nats://10.0.0.5:4222"), true},
		{with(with(nil, testutil.OnFC...), config.NATSURL, "tls://xnum:pw@10.0.0.5:4222"), false},
		{map[string]string{config.NATSURL: "nats://127.0.0.1:4222"}, false}, // off FC: a local NATS
	} {
		stdout := &testutil.SyncBuffer{}
		if err := function.Run(context.Background(), "buy", env(tc.env), stdout, wire); !errors.Is(err, stop) {
			t.Fatal(err)
		}
		if warned := strings.Contains(stdout.String(), "without TLS or without credentials"); warned != tc.warn {
			t.Errorf("%v: warned %v, want %v:\n%s", tc.env, warned, tc.warn, stdout.String())
		}
	}
}
