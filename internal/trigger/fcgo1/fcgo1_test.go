package fcgo1_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/pkg/provider"
)

const (
	stsID     = "STS.NUgo1KeyId"
	stsSecret = "Go1StsSecretMustNotLeak"
	stsToken  = "CAISGo1TokenMustNotLeak"
)

var sts = map[string]string{
	"x-fc-access-key-id":     stsID,
	"x-fc-access-key-secret": stsSecret,
	"x-fc-security-token":    stsToken,
}

// fixture is a function whose handlers record what they saw.
type fixture struct {
	mu       sync.Mutex
	msgs     []trigger.Message
	creds    []provider.Credentials
	inits    int
	preStops int
	preStop  error
	entered  chan string   // ids of orders that block, as they arrive
	release  chan struct{} // closed to let them go
}

func (f *fixture) function() trigger.Function {
	mux := httpjson.NewMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		c, _ := provider.CredentialsFromContext(r.Context())
		dl, _ := r.Context().Deadline()
		httpjson.Write(w, http.StatusOK, map[string]any{
			"requestId":    logging.RequestID(r.Context()),
			"keyId":        c.AccessKeyID,
			"token":        c.SecurityToken == stsToken,
			"secretHeader": r.Header.Get(fc.HeaderAccessKeySecret),
			"deadline":     dl.UnixMilli(),
			"city":         r.URL.Query().Get("city"),
			"remote":       r.RemoteAddr,
			"accept":       r.Header.Get("Accept"),
		})
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append([]byte{0xff, 0x00}, b...))
	})
	return trigger.Function{
		Name: "go1",
		HTTP: mux,
		Events: trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			c, _ := provider.CredentialsFromContext(ctx)
			f.mu.Lock()
			f.creds = append(f.creds, c)
			f.msgs = append(f.msgs, msgs...)
			f.mu.Unlock()
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				var o struct{ OrderID string }
				_ = json.Unmarshal(m.Body, &o)
				switch {
				case o.OrderID == "ord-fail":
					errs[i] = &provider.Error{Kind: provider.ErrUnavailable, Message: "ledger unavailable"}
				case o.OrderID == "ord-panic":
					panic("kaput")
				case strings.HasPrefix(o.OrderID, "ord-block"):
					f.entered <- o.OrderID
					<-f.release
				}
			}
			return errs
		}),
		Initialize: func(context.Context) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.inits++
			return nil
		},
		PreStop: func(context.Context) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.preStops++
			return f.preStop
		},
	}
}

type harness struct {
	api    *fcgo1test.RuntimeAPI
	fix    *fixture
	stdout *testutil.SyncBuffer
	logs   *testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs the go1 loop of the fixture against an emulated runtime API.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		api:    fcgo1test.NewRuntimeAPI(t),
		fix:    &fixture{entered: make(chan string, 4), release: make(chan struct{})},
		stdout: &testutil.SyncBuffer{},
		logs:   &testutil.SyncBuffer{},
		done:   make(chan error, 1),
	}
	logger := logging.New(h.logs, logging.Options{Level: slog.LevelDebug, Function: "go1"})
	srv, err := fc.New(h.fix.function(), fc.WithLogger(logger), fc.WithStdout(io.Discard), fc.WithContract(true))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := fcgo1.New(h.api.Addr(), srv, fcgo1.WithLogger(logger), fcgo1.WithStdout(h.stdout), fcgo1.WithShutdownTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		for _, s := range []string{stsSecret, stsToken} {
			if strings.Contains(h.logs.String()+h.stdout.String(), s) {
				t.Errorf("a secret reached the logs:\n%s", h.logs.String())
			}
		}
	})
	return h
}

func TestHTTPTrigger(t *testing.T) {
	h := start(t)
	// The caller's own x-fc-* headers must not pass for FC's.
	spoof := map[string]string{"Accept": "application/json", "x-fc-access-key-id": "STS.spoofed", "X-Fc-Request-Id": "spoofed-id", "x-fc-function-deadline": "1"}
	deadline := time.Now().Add(42 * time.Second).Truncate(time.Millisecond)
	res := h.api.Invoke(t, fcgo1test.Invocation{
		RequestID: "go1-http-1", Deadline: deadline, Header: sts,
		Payload: fcgo1test.HTTPEvent("GET", "/hello?city=%E6%9D%AD%E5%B7%9E", spoof, ""),
	})
	resp := res.HTTP(t)
	var got struct {
		RequestID, KeyID, SecretHeader, City, Remote, Accept string
		Token                                                bool
		Deadline                                             int64
	}
	if resp.StatusCode != 200 || resp.IsBase64Encoded || json.Unmarshal([]byte(resp.Body), &got) != nil {
		t.Fatalf("answer %+v", resp)
	}
	want := struct {
		RequestID, KeyID, SecretHeader, City, Remote, Accept string
		Token                                                bool
		Deadline                                             int64
	}{"go1-http-1", stsID, "", "杭州", "203.0.113.7:0", "application/json", true, deadline.UnixMilli()}
	if got != want {
		t.Errorf("the route saw %+v, want %+v", got, want)
	}
	if !strings.HasPrefix(resp.Headers["Content-Type"], "application/json") || resp.Headers["X-Request-Id"] != "go1-http-1" {
		t.Errorf("headers %v", resp.Headers)
	}

	// Errors of the routes are answers of the trigger, in the shared shape.
	resp = h.api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-http-2", Payload: fcgo1test.HTTPEvent("GET", "/nope", nil, "")}).HTTP(t)
	var eb httpjson.ErrorBody
	if resp.StatusCode != 404 || json.Unmarshal([]byte(resp.Body), &eb) != nil || eb.Error.Code != "NotFound" || eb.Error.RequestID != "go1-http-2" {
		t.Errorf("unknown route: %+v", resp)
	}

	// Bodies: base64 in, binary out as base64.
	ev := map[string]any{}
	_ = json.Unmarshal(fcgo1test.HTTPEvent("POST", "/echo", nil, ""), &ev)
	ev["body"], ev["isBase64Encoded"] = base64.StdEncoding.EncodeToString([]byte("hi\x01")), true
	payload, _ := json.Marshal(ev)
	resp = h.api.Invoke(t, fcgo1test.Invocation{Payload: payload}).HTTP(t)
	if b, err := base64.StdEncoding.DecodeString(resp.Body); resp.StatusCode != 201 || !resp.IsBase64Encoded || err != nil || string(b) != "\xff\x00hi\x01" {
		t.Errorf("binary echo: %+v", resp)
	}
	ev["body"] = "not base64!"
	payload, _ = json.Marshal(ev)
	if doc := h.api.Invoke(t, fcgo1test.Invocation{Payload: payload}).Error(t); doc.Type != "InvalidParameter" {
		t.Errorf("a body that is not base64: %+v", doc)
	}

	out := h.stdout.String()
	if !strings.Contains(out, "FC Invoke Start RequestId: go1-http-1\n") || !strings.Contains(out, "FC Invoke End RequestId: go1-http-1\n") {
		t.Errorf("markers:\n%s", out)
	}
}

func TestEvents(t *testing.T) {
	h := start(t)
	mns, err := os.ReadFile("../fc/testdata/mns-stream.json")
	if err != nil {
		t.Fatal(err)
	}
	res := h.api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-ev-1", Payload: mns, Header: sts})
	var body struct{ Messages int }
	if res.Kind != "response" || json.Unmarshal(res.Body, &body) != nil || body.Messages != 2 {
		t.Fatalf("EventBridge batch: %s %s", res.Kind, res.Body)
	}
	h.fix.mu.Lock()
	msgs, creds := h.fix.msgs, h.fix.creds
	h.fix.mu.Unlock()
	if len(msgs) != 2 || msgs[0].Source != trigger.SourceMNS || msgs[1].Source != trigger.SourceMNS {
		t.Errorf("the handler saw %+v", msgs)
	}
	if len(creds) != 1 || creds[0] != (provider.Credentials{AccessKeyID: stsID, AccessKeySecret: stsSecret, SecurityToken: stsToken}) {
		t.Errorf("the handler saw credentials %v", creds)
	}

	for _, tc := range []struct {
		name, payload, typ string
	}{
		{"failing order", `{"orderId":"ord-fail"}`, "Unavailable"},
		{"panic", `{"orderId":"ord-panic"}`, "Internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "go1-" + strings.ReplaceAll(tc.name, " ", "-")
			doc := h.api.Invoke(t, fcgo1test.Invocation{RequestID: id, Payload: []byte(tc.payload)}).Error(t)
			if doc.Type != tc.typ || !strings.Contains(doc.Message, "(request "+id+")") {
				t.Errorf("error %+v, want type %s naming the request", doc, tc.typ)
			}
			if !strings.Contains(h.stdout.String(), "FC Invoke End RequestId: "+id+", Error: Unhandled function error\n") {
				t.Errorf("no error marker:\n%s", h.stdout.String())
			}
		})
	}
	// A payload that is not JSON is one direct message.
	if res := h.api.Invoke(t, fcgo1test.Invocation{Payload: []byte("drain")}); res.Kind != "response" {
		t.Errorf("plain payload: %s %s", res.Kind, res.Body)
	}
}

func TestLifecycleHooks(t *testing.T) {
	h := start(t)
	for i, typ := range []int{fcgo1.TypeInitializer, fcgo1.TypePreFreeze, fcgo1.TypePreStop} {
		if res := h.api.Invoke(t, fcgo1test.Invocation{Type: typ, RequestID: "hook-" + strconv.Itoa(i)}); res.Kind != "response" {
			t.Fatalf("hook type %d: %s %s", typ, res.Kind, res.Body)
		}
	}
	h.fix.mu.Lock()
	inits, preStops := h.fix.inits, h.fix.preStops
	h.fix.preStop = errors.New("flush failed")
	h.fix.mu.Unlock()
	if inits != 1 || preStops != 1 {
		t.Errorf("initializer ran %d times, preStop %d", inits, preStops)
	}
	if doc := h.api.Invoke(t, fcgo1test.Invocation{Type: fcgo1.TypePreStop, RequestID: "hook-fail"}).Error(t); doc.Type != "Internal" {
		t.Errorf("a failing preStop: %+v", doc)
	}
	out := h.stdout.String()
	for _, line := range []string{
		"FC Initialize Start RequestId: hook-0\n", "FC Initialize End RequestId: hook-0\n",
		"FC PreFreeze Start RequestId: hook-1\n", "FC PreStop End RequestId: hook-2\n",
		"FC PreStop End RequestId: hook-fail, Error: Unhandled function error\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("stdout lacks %q:\n%s", line, out)
		}
	}
	// An unknown type is a handler invocation, as the SDK reads it.
	if res := h.api.Invoke(t, fcgo1test.Invocation{Type: 9, Payload: []byte(`{"orderId":"o"}`)}); res.Kind != "response" {
		t.Errorf("unknown type: %s %s", res.Kind, res.Body)
	}
}

// Invocations run at once, each in its own goroutine, as the SDK runs them;
// a stop waits for those under way, and they are answered.
func TestConcurrentInvocationsAndStop(t *testing.T) {
	h := start(t)
	results := make(chan fcgo1test.Result, 2)
	for _, id := range []string{"ord-block-1", "ord-block-2"} {
		go func() { results <- h.api.Invoke(t, fcgo1test.Invocation{Payload: []byte(`{"orderId":"` + id + `"}`)}) }()
	}
	// Both are in the handler at the same time.
	<-h.fix.entered
	<-h.fix.entered
	h.cancel()
	select {
	case err := <-h.done:
		t.Fatalf("Run returned (%v) with two invocations under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.fix.release)
	for range 2 {
		if res := <-results; res.Kind != "response" {
			t.Errorf("invocation under way at the stop: %s %s", res.Kind, res.Body)
		}
	}
	err := <-h.done
	h.done <- err // for the cleanup
	if err != nil {
		t.Fatal(err)
	}
	if n := h.api.Strays(); n != 0 {
		t.Errorf("%d stray results", n)
	}
}

// A runtime API that fails is polled again.
func TestRuntimeAPIFailures(t *testing.T) {
	h := start(t)
	h.api.FailNext(3)
	if res := h.api.Invoke(t, fcgo1test.Invocation{Payload: []byte(`{"orderId":"o"}`)}); res.Kind != "response" {
		t.Fatalf("after failures: %s %s", res.Kind, res.Body)
	}
	if !strings.Contains(h.logs.String(), "next failed") {
		t.Errorf("the failures were not logged:\n%s", h.logs.String())
	}
}

func TestNewRefusesABadAddress(t *testing.T) {
	for _, addr := range []string{"", "http://127.0.0.1:9000", "127.0.0.1:9000/x", "a b"} {
		if _, err := fcgo1.New(addr, http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), fcgo1.RuntimeAPIEnv) {
			t.Errorf("New(%q) = %v", addr, err)
		}
	}
}
