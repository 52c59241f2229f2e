package wakeup_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// worker is a function under FC's custom runtime contract that keeps the
// payloads FC invokes it with.
type worker struct {
	mu       sync.Mutex
	payloads [][]byte
	keys     []string // x-fc-access-key-id of each invocation
}

func (w *worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.payloads = append(w.payloads, b)
	w.keys = append(w.keys, r.Header.Get("x-fc-access-key-id"))
	w.mu.Unlock()
	rw.Header().Set("x-fc-status", "200")
	rw.WriteHeader(http.StatusOK)
}

func (w *worker) got() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.payloads...)
}

// cloud is the whole emulator with a worker function registered as name.
type cloud struct {
	*emulatortest.Server
	worker *worker
}

func newCloud(t *testing.T, name string, opts ...emulator.Option) *cloud {
	t.Helper()
	c := &cloud{Server: emulatortest.NewServer(t, opts...), worker: &worker{}}
	fn := httptest.NewServer(c.worker)
	t.Cleanup(fn.Close)
	if err := c.FC().Register(fc.Function{Name: name, URL: fn.URL, Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cloud) client(t *testing.T, creds provider.Credentials) *wakeup.Client {
	t.Helper()
	cl, err := wakeup.NewClient(wakeup.Config{Endpoint: c.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

var devKey = provider.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, AccessKeySecret: emulator.DefaultAccessKeySecret}

func TestInvokeAsyncRunsTheFunction(t *testing.T) {
	c := newCloud(t, "xnum-buy-worker")
	id, err := c.client(t, devKey).InvokeAsync(context.Background(), "xnum-buy-worker", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the invocation", func() bool { return len(c.worker.got()) == 1 })
	if got := string(c.worker.got()[0]); got != `{"x":1}` {
		t.Fatalf("payload %s", got)
	}
	if invs := c.FC().Invocations(); len(invs) != 1 || invs[0].RequestID != id || id == "" {
		t.Fatalf("request id %q, invocations %+v", id, invs)
	}
}

// The role's credentials of the invocation sign the call when they can; a
// temporary key without its token (FC's newer custom runtimes send none in
// the headers) cannot, and the configured credentials are used.
func TestCredentials(t *testing.T) {
	c := newCloud(t, "w", emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	role := provider.Credentials{AccessKeyID: "STS.role", AccessKeySecret: "role-secret", SecurityToken: "role-token"}
	cases := []struct {
		name   string
		ctx    *provider.Credentials
		config provider.Credentials
		kind   provider.Kind
	}{
		{"from the context", &role, provider.Credentials{}, ""},
		{"configured", nil, role, ""},
		{"context's key without its token", &provider.Credentials{AccessKeyID: "STS.role", AccessKeySecret: "role-secret"}, role, ""},
		{"context's over configured", &role, provider.Credentials{AccessKeyID: "STS.other", AccessKeySecret: "x", SecurityToken: "y"}, ""},
		{"none", nil, provider.Credentials{}, provider.ErrUnauthorized},
		{"wrong token", &provider.Credentials{AccessKeyID: "STS.role", AccessKeySecret: "role-secret", SecurityToken: "stale"}, provider.Credentials{}, provider.ErrUnauthorized},
		{"wrong secret", nil, provider.Credentials{AccessKeyID: "STS.role", AccessKeySecret: "guess", SecurityToken: "role-token"}, provider.ErrUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = provider.ContextWithCredentials(ctx, *tc.ctx)
			}
			_, err := c.client(t, tc.config).InvokeAsync(ctx, "w", []byte("{}"))
			if provider.KindOf(err) != tc.kind {
				t.Fatalf("got %v, want kind %q", err, tc.kind)
			}
			if err != nil && (strings.Contains(err.Error(), "role-secret") || strings.Contains(err.Error(), "role-token")) {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestInvokeErrors(t *testing.T) {
	c := newCloud(t, "w")
	cases := []struct {
		name     string
		endpoint string
		function string
		payload  []byte
		kind     provider.Kind
		code     string
	}{
		{"unknown function", c.URL, "nobody", []byte("{}"), provider.ErrNotFound, "FunctionNotFound"},
		{"payload too large", c.URL, "w", make([]byte, fc.MaxAsyncPayload+1), provider.ErrInvalidParameter, "EntityTooLarge"},
		{"nothing listening", "http://127.0.0.1:1", "w", []byte("{}"), provider.ErrUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := wakeup.NewClient(wakeup.Config{Endpoint: tc.endpoint, Credentials: devKey})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.InvokeAsync(context.Background(), tc.function, tc.payload)
			var pe *provider.Error
			if provider.KindOf(err) != tc.kind || !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("got %v, want %s %s", err, tc.kind, tc.code)
			}
		})
	}
	if _, err := wakeup.NewClient(wakeup.Config{Endpoint: "fc.aliyuncs.com"}); err == nil {
		t.Fatal("an endpoint without a scheme was taken")
	}
}
