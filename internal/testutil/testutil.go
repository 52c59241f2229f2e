// Package testutil holds the small helpers the project's tests share.
package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/queue"
)

// OnFC are the variables, as name, value pairs, that Function Compute sets
// in every function instance: an environment with them runs "on FC"
// (config.OnFC), where FC's contract is honoured. (Named here, not with
// config's constants: the provider packages' tests use this package.)
var OnFC = []string{"FC_FUNCTION_NAME", "xnum-test", "FC_REGION", "cn-hangzhou", "FC_ACCOUNT_ID", "1234567890"}

// SyncBuffer is a bytes.Buffer that goroutines may write to while a test
// reads it: servers under test log from their own goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *SyncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Env is an environment for a test: Lookup reads it as os.LookupEnv reads
// the process's.
type Env map[string]string

// Lookup returns the value of name, if set.
func (e Env) Lookup(name string) (string, bool) { v, ok := e[name]; return v, ok }

// With returns a copy of e with the name/value pairs kv set.
func (e Env) With(kv ...string) Env {
	m := maps.Clone(e)
	if m == nil {
		m = Env{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// WantEnvError fails the test unless err is an *envvar.Error naming
// variable that shows none of the secrets of env (the values of variables
// whose names say SECRET or TOKEN).
func WantEnvError(t testing.TB, err error, variable string, env Env) {
	t.Helper()
	var ee *envvar.Error
	if !errors.As(err, &ee) || ee.Var != variable || !strings.Contains(err.Error(), variable) {
		t.Fatalf("error %v; want one naming %s (set to %q)", err, variable, env[variable])
	}
	for k, v := range env {
		if v != "" && (strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN")) && strings.Contains(err.Error(), v) {
			t.Fatalf("the error shows %s: %v", k, err)
		}
	}
}

// Running is what Run started.
type Running struct {
	stop    func() error
	stopped atomic.Bool
}

// Stop ends the run and returns its error; later calls return the same.
func (r *Running) Stop() error {
	r.stopped.Store(true)
	return r.stop()
}

// Run runs run (a function's run, which must work until its context ends)
// until Stop or the end of the test. If the test did not Stop it, the test
// fails when run returns an error.
func Run(t testing.TB, run func(ctx context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	r := &Running{}
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		stopped := r.stopped.Load()
		if err := r.stop(); err != nil && !stopped {
			t.Errorf("run: %v", err)
		}
	})
	return r
}

// Served is a server Serve started.
type Served struct {
	*Running
	URL string // http://127.0.0.1:port
}

// Serve runs serve (a server, or a function binary's run, which must serve
// on the listener it is given until its context ends) on a loopback port,
// as Run runs it.
func Serve(t testing.TB, serve func(ctx context.Context, l net.Listener) error) *Served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &Served{Running: Run(t, func(ctx context.Context) error { return serve(ctx, ln) }), URL: "http://" + ln.Addr().String()}
}

// WaitFor polls cond until it holds, failing the test after 20 seconds: the
// bound is for a broken build, never a speed the test asserts.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// JetStream connects to the NATS server(s) at url as the functions do
// (queue.Connect), reconnecting quickly, for the test tb; opts come last.
// The connection is closed when the test ends.
func JetStream(tb testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := queue.Connect(url, append([]nats.Option{nats.ReconnectWait(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// Do sends method url with body and the header name/value pairs, and returns
// the answer with its body read (and closed). The test fails if nothing
// answers.
func Do(t testing.TB, method, url, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp, b
}

// Concurrently runs f(0) … f(n-1) each on its own goroutine and fails the
// test with the first error any returns.
func Concurrently(t testing.TB, n int, f func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- f(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
