package fc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// runtime is a function under FC's custom runtime contract that records
// what FC sent it and answers as told.
type runtime struct {
	mu       sync.Mutex
	calls    []call
	answer   func(n int) (status int, fcStatus string) // n counts calls from 0
	delay    time.Duration
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

type call struct {
	path   string
	header http.Header
	body   []byte
}

func newRuntime(t *testing.T) (*runtime, string) {
	rt := &runtime{answer: func(int) (int, string) { return 200, "200" }}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return rt, srv.URL
}

func (rt *runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rt.inFlight.Add(1)
	defer rt.inFlight.Add(-1)
	for {
		m := rt.maxIn.Load()
		if n <= m || rt.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	rt.mu.Lock()
	i := len(rt.calls)
	rt.calls = append(rt.calls, call{path: r.URL.Path, header: r.Header.Clone(), body: body})
	rt.mu.Unlock()
	select {
	case <-time.After(rt.delay):
	case <-r.Context().Done():
		return
	}
	status, fcStatus := rt.answer(i)
	w.Header().Set("x-fc-status", fcStatus)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"messages":1}`))
}

func (rt *runtime) recorded() []call {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]call(nil), rt.calls...)
}

// newFC starts the emulated FC API on loopback.
func newFC(t *testing.T, opts ...fc.Option) (*fc.Server, string) {
	t.Helper()
	s := fc.New(append([]fc.Option{fc.WithRetryDelay(10 * time.Millisecond)}, opts...)...)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s, strings.TrimPrefix(srv.URL, "http://")
}

// invoke calls InvokeFunction through darabonba-openapi, the signer of
// Alibaba's generated fc-20230330 client, as that client builds the call.
func invoke(t *testing.T, host, function string, headers map[string]string, payload []byte) (string, error) {
	t.Helper()
	client, err := openapi.NewClient(&openapi.Config{AccessKeyId: dara.String(fc.DefaultAccessKeyID),
		AccessKeySecret: dara.String(fc.DefaultAccessKeySecret), Endpoint: dara.String(host), Protocol: dara.String("HTTP")})
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]*string{}
	for k, v := range headers {
		h[k] = dara.String(v)
	}
	params := &openapi.Params{Action: dara.String("InvokeFunction"), Version: dara.String(fc.APIVersion), Protocol: dara.String("HTTP"),
		Pathname: dara.String("/" + fc.APIVersion + "/functions/" + function + "/invocations"), Method: dara.String("POST"),
		AuthType: dara.String("AK"), Style: dara.String("ROA"), ReqBodyType: dara.String("json"), BodyType: dara.String("binary")}
	res, err := client.CallApiWithCtx(context.Background(), params,
		&openapi.OpenApiRequest{Headers: h, Stream: bytes.NewReader(payload)}, &dara.RuntimeOptions{})
	if err != nil {
		return "", err
	}
	if st := res["statusCode"]; st != http.StatusAccepted {
		t.Fatalf("InvokeFunction answered %v, want 202", st)
	}
	hs, _ := res["headers"].(map[string]*string)
	return dara.StringValue(hs["x-fc-request-id"]), nil
}

var async = map[string]string{"x-fc-invocation-type": "Async"}

func done(s *fc.Server, n int) func() bool {
	return func() bool {
		invs := s.Invocations()
		if len(invs) < n {
			return false
		}
		for _, inv := range invs {
			if !inv.Done {
				return false
			}
		}
		return true
	}
}

func TestAsyncInvocationRunsTheFunction(t *testing.T) {
	rt, url := newRuntime(t)
	s, host := newFC(t, fc.WithAccount("5555", "cn-shanghai"),
		fc.WithRole(fc.Credentials{AccessKeyID: "STS.role", AccessKeySecret: "role-secret", SecurityToken: "role-token"}))
	if err := s.Register(fc.Function{Name: "worker", URL: url, MemoryMB: 256}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"type":"xnum.wakeup","orders":[]}`)
	id, err := invoke(t, host, "worker", async, payload)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the invocation", done(s, 1))

	calls := rt.recorded()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.path != "/invoke" || !bytes.Equal(c.body, payload) {
		t.Fatalf("got %s %q", c.path, c.body)
	}
	want := map[string]string{
		"x-fc-request-id": id, "x-fc-control-path": "/invoke", "x-fc-function-name": "worker",
		"x-fc-access-key-id": "STS.role", "x-fc-access-key-secret": "role-secret", "x-fc-security-token": "role-token",
		"x-fc-region": "cn-shanghai", "x-fc-account-id": "5555", "x-fc-function-memory": "256", "x-fc-retry-count": "0",
	}
	for k, v := range want {
		if got := c.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	inv := s.Invocations()[0]
	if !inv.Succeeded || inv.Attempts != 1 || inv.RequestID != id || inv.Function != "worker" {
		t.Fatalf("invocation %+v", inv)
	}
}

func TestRefusedCalls(t *testing.T) {
	_, url := newRuntime(t)
	s, host := newFC(t)
	if err := s.Register(fc.Function{Name: "worker", URL: url}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, function string
		headers        map[string]string
		payload        []byte
		code           string
		status         int
	}{
		{"unknown function", "nobody", async, []byte("{}"), "FunctionNotFound", 404},
		{"synchronous", "worker", nil, []byte("{}"), "InvalidArgument", 400},
		{"payload over 128 KB", "worker", async, bytes.Repeat([]byte("x"), fc.MaxAsyncPayload+1), "EntityTooLarge", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := invoke(t, host, c.function, c.headers, c.payload)
			var ce *tea.SDKError
			if !errors.As(err, &ce) || dara.StringValue(ce.Code) != c.code || dara.IntValue(ce.StatusCode) != c.status {
				t.Fatalf("got %v, want %d %s", err, c.status, c.code)
			}
		})
	}
	t.Run("another path", func(t *testing.T) {
		resp, err := http.Post("http://"+host+"/"+fc.APIVersion+"/functions/worker", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Code, Message, RequestId string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 400 || body.Code != "PathNotSupported" || body.RequestId == "" {
			t.Fatalf("got %d %+v", resp.StatusCode, body)
		}
	})
	if n := len(s.Invocations()); n != 0 {
		t.Fatalf("%d invocations after refused calls", n)
	}
}

func TestFailedInvocationsAreRetried(t *testing.T) {
	cases := []struct {
		name      string
		retries   int
		answer    func(n int) (int, string)
		attempts  int
		succeeded bool
	}{
		{"function error, then success", 2, func(n int) (int, string) {
			if n < 2 {
				return 404, "404"
			}
			return 200, "200"
		}, 3, true},
		{"always a function error", 1, func(int) (int, string) { return 404, "404" }, 2, false},
		{"HTTP 500 without x-fc-status", 0, func(int) (int, string) { return 500, "" }, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, url := newRuntime(t)
			rt.answer = c.answer
			s, host := newFC(t)
			if err := s.Register(fc.Function{Name: "w", URL: url, Retries: c.retries}); err != nil {
				t.Fatal(err)
			}
			if _, err := invoke(t, host, "w", async, []byte("x")); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, "the invocation to end", done(s, 1))
			inv := s.Invocations()[0]
			if inv.Attempts != c.attempts || inv.Succeeded != c.succeeded {
				t.Fatalf("got %+v, want %d attempts, succeeded %v", inv, c.attempts, c.succeeded)
			}
			for i, call := range rt.recorded() {
				if got := call.header.Get("x-fc-retry-count"); got != string(rune('0'+i)) {
					t.Fatalf("attempt %d: x-fc-retry-count %s", i, got)
				}
				if call.header.Get("x-fc-request-id") != inv.RequestID {
					t.Fatalf("a retry changed the request id")
				}
			}
		})
	}
}

func TestConcurrencyAndTimeout(t *testing.T) {
	rt, url := newRuntime(t)
	rt.delay = 30 * time.Millisecond
	s, _ := newFC(t)
	if err := s.Register(fc.Function{Name: "one", URL: url, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := s.Invoke("one", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "five invocations", done(s, 5))
	if m := rt.maxIn.Load(); m != 1 {
		t.Fatalf("%d invocations ran at once with a concurrency of 1", m)
	}

	slow, slowURL := newRuntime(t)
	slow.delay = time.Minute
	if err := s.Register(fc.Function{Name: "slow", URL: slowURL, Timeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invoke("slow", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the slow invocation", done(s, 6))
	if inv := s.Invocations()[5]; inv.Succeeded || !strings.Contains(inv.Err, "deadline") {
		t.Fatalf("an invocation past its timeout: %+v", inv)
	}
}

func TestCloseStopsInvocations(t *testing.T) {
	rt, url := newRuntime(t)
	rt.delay = time.Minute
	s := fc.New()
	if err := s.Register(fc.Function{Name: "w", URL: url}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // one runs, two wait for the concurrency of 1
		if _, err := s.Invoke("w", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "the first to run", func() bool { return len(rt.recorded()) == 1 })
	s.Close()
	for _, inv := range s.Invocations() {
		if !inv.Done || inv.Succeeded {
			t.Fatalf("after Close: %+v", inv)
		}
	}
	if _, err := s.Invoke("w", nil); err == nil {
		t.Fatal("a closed server took an invocation")
	}
}

func TestTimer(t *testing.T) {
	rt, url := newRuntime(t)
	s, _ := newFC(t)
	if err := s.Register(fc.Function{Name: "w", URL: url}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.Timer(ctx, "w", "drain", "drain", 10*time.Millisecond)
	}()
	testutil.WaitFor(t, "a timer invocation", func() bool { return len(rt.recorded()) > 0 })
	cancel()
	<-stopped
	var ev map[string]string
	if err := json.Unmarshal(rt.recorded()[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, ev["triggerTime"]); err != nil || ev["triggerName"] != "drain" || ev["payload"] != "drain" || len(ev) != 3 {
		t.Fatalf("timer event %v", ev)
	}
}
