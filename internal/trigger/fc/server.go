// Package fc serves a trigger.Function under Alibaba Cloud Function Compute
// 3.0's custom runtime contract: a plain HTTP server on 0.0.0.0 at the port
// FC gives, where HTTP-trigger requests reach the function's own routes and
// event invocations arrive as POST /invoke, lifecycle hooks as
// POST /initialize, GET /pre-freeze and GET /pre-stop, and FC's health
// check as GET /healthz (customRuntimeConfig.healthCheckConfig).
package fc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Headers of FC's custom runtime contract.
const (
	HeaderControlPath     = "X-Fc-Control-Path" // /invoke, /initialize or /http-invoke
	HeaderStatus          = "X-Fc-Status"       // 200 success, 404 function error
	HeaderAccessKeyID     = "X-Fc-Access-Key-Id"
	HeaderAccessKeySecret = "X-Fc-Access-Key-Secret"
	HeaderSecurityToken   = "X-Fc-Security-Token"
	// FC's deadline of an invocation, Unix epoch milliseconds, and the
	// function's timeout in seconds. FC's go1 runtime API sends both; the
	// custom runtime's documented headers have neither, only the
	// initializer's timeout in seconds, so they are used when present.
	HeaderFunctionDeadline      = "X-Fc-Function-Deadline"
	HeaderFunctionTimeout       = "X-Fc-Function-Timeout"
	HeaderInitializationTimeout = "X-Fc-Initialization-Timeout"
)

// DefaultPort is FC's default CAPort.
const DefaultPort = "9000"

// DefaultMaxEventBytes bounds an event payload: FC's own limit for a
// synchronous invocation is 32 MB.
const DefaultMaxEventBytes = 32 << 20

// Addr is the address to listen on: 0.0.0.0 (FC cannot reach a server on
// 127.0.0.1) at FC_CUSTOM_LISTEN_PORT, else FC_SERVER_PORT, else PORT, else
// 9000.
func Addr(lookup func(string) (string, bool)) string {
	for _, name := range []string{"FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT", "PORT"} {
		if v, ok := lookup(name); ok && v != "" {
			return net.JoinHostPort("0.0.0.0", v)
		}
	}
	return net.JoinHostPort("0.0.0.0", DefaultPort)
}

// Option configures a Server.
type Option func(*Server)

// WithAddr sets the address to listen on (default Addr(os.LookupEnv)).
func WithAddr(addr string) Option { return func(s *Server) { s.addr = addr } }

// WithListener serves on l instead of listening on an address; tests pass a
// loopback listener.
func WithListener(l net.Listener) Option { return func(s *Server) { s.listener = l } }

// WithLogger sets the JSON logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithStdout sets where the FC Invoke Start/End lines go (default
// os.Stdout: FC splits its logs per request on them).
func WithStdout(w io.Writer) Option { return func(s *Server) { s.stdout = w } }

// WithShutdownTimeout bounds the drain of in-flight requests when the
// serving context ends (default 20s).
func WithShutdownTimeout(d time.Duration) Option { return func(s *Server) { s.shutdownTimeout = d } }

// WithMaxEventBytes bounds an event payload (default DefaultMaxEventBytes).
func WithMaxEventBytes(n int64) Option { return func(s *Server) { s.maxEvent = n } }

// WithAround runs a around each invocation: an event invocation (/invoke)
// or an HTTP-trigger request to the function's routes (one with FC's
// request id), not the lifecycle hooks or the health check
// (internal/metrics writes each invocation's metrics line).
func WithAround(a trigger.Around) Option { return func(s *Server) { s.around = a } }

// WithPreStop adds a hook run on GET /pre-stop after the function's own, e.g.
// to flush the NATS connection the runtime opened.
func WithPreStop(f func(context.Context) error) Option {
	return func(s *Server) { s.preStop = append(s.preStop, f) }
}

// Server serves one function under FC's custom runtime contract. It is an
// http.Handler; Serve runs it on a listener.
type Server struct {
	fn              trigger.Function
	routes          http.Handler
	handler         http.Handler
	addr            string
	listener        net.Listener
	logger          *slog.Logger
	stdout          io.Writer
	stdoutMu        sync.Mutex
	shutdownTimeout time.Duration
	maxEvent        int64
	preStop         []func(context.Context) error
	around          trigger.Around
}

// New returns a Server for fn.
func New(fn trigger.Function, opts ...Option) (*Server, error) {
	if err := fn.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		fn:              fn,
		logger:          slog.New(slog.DiscardHandler),
		stdout:          os.Stdout,
		shutdownTimeout: 20 * time.Second,
		maxEvent:        DefaultMaxEventBytes,
	}
	for _, o := range opts {
		o(s)
	}
	if s.addr == "" {
		s.addr = Addr(os.LookupEnv)
	}
	routes := fn.HTTP
	if routes == nil {
		mux := httpjson.NewMux() // every path is a JSON 404
		routes = mux
	}
	s.routes = httpjson.Recover(httpjson.LimitBody(routes, httpjson.MaxBodyBytes), s.logger)
	s.handler = healthz(httpjson.RequestID(httpjson.Trace(httpjson.AccessLog(http.HandlerFunc(s.dispatch), s.logger))))
	return s, nil
}

// ServeHTTP serves one request of FC's contract.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// dispatch takes the per-request STS credentials out of the headers into
// the context, then routes by x-fc-control-path when FC sends it, else by
// method and path, with FC's deadline on the context when FC gives one.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	r = withCredentials(r)
	op := r.Header.Get(HeaderControlPath)
	if op == "" {
		switch {
		case r.Method == http.MethodPost && (r.URL.Path == "/invoke" || r.URL.Path == "/initialize"),
			r.Method == http.MethodGet && (r.URL.Path == "/pre-stop" || r.URL.Path == "/pre-freeze"):
			op = r.URL.Path
		}
	}
	if dl, ok := deadline(r.Header, op, time.Now()); ok {
		ctx, cancel := context.WithDeadline(r.Context(), dl)
		defer cancel()
		r = r.WithContext(ctx)
	}
	// An invocation: an event, or an HTTP-trigger request FC sent (a local
	// request to the routes carries no FC request id, as for the markers).
	invocation := op == "/invoke" || op != "/initialize" && op != "/pre-stop" && op != "/pre-freeze" && r.Header.Get(httpjson.HeaderFCRequestID) != ""
	if s.around != nil && invocation {
		ctx, done := s.around(r.Context())
		defer done()
		r = r.WithContext(ctx)
	}
	switch op {
	case "/invoke":
		s.invoke(w, r)
	case "/initialize":
		s.hook(w, r, "Initialize", hooks(s.fn.Initialize))
	case "/pre-stop":
		s.hook(w, r, "PreStop", append(hooks(s.fn.PreStop), s.preStop...))
	case "/pre-freeze":
		s.hook(w, r, "PreFreeze", nil)
	default: // "/http-invoke", or a local request to one of the routes
		// FC splits an HTTP function's logs per request on the same markers;
		// a local request (no FC request id) does without them.
		if r.Header.Get(httpjson.HeaderFCRequestID) != "" {
			id := logging.RequestID(r.Context())
			s.mark("FC Invoke Start RequestId: " + id)
			defer s.mark("FC Invoke End RequestId: " + id)
		}
		s.routes.ServeHTTP(w, r)
	}
}

// HealthPath is FC's health check of the instance (and a liveness probe
// anywhere): it answers 200 while the process serves. It is not logged, so
// a check every few seconds does not fill the log.
const HealthPath = "/healthz"

func healthz(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HealthPath || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// deadline is when FC stops waiting for the invocation: its deadline header,
// else (for the initializer) the initializer's timeout, else the function's
// timeout, counted from now. A value that is not a whole number in range is
// ignored: no deadline is better than a wrong one.
func deadline(h http.Header, op string, now time.Time) (time.Time, bool) {
	const (
		maxEpochMilli = 253402300799999 // the end of year 9999
		maxSeconds    = 86400           // FC's longest timeout (a day, for async tasks)
	)
	if ms, ok := inRange(h.Get(HeaderFunctionDeadline), maxEpochMilli); ok {
		return time.UnixMilli(ms), true
	}
	if op == "/initialize" {
		if sec, ok := inRange(h.Get(HeaderInitializationTimeout), maxSeconds); ok {
			return now.Add(time.Duration(sec) * time.Second), true
		}
	}
	if sec, ok := inRange(h.Get(HeaderFunctionTimeout), maxSeconds); ok {
		return now.Add(time.Duration(sec) * time.Second), true
	}
	return time.Time{}, false
}

// inRange parses a whole number from 1 to max.
func inRange(s string, max int64) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n > 0 && n <= max
}

func hooks(f func(context.Context) error) []func(context.Context) error {
	if f == nil {
		return nil
	}
	return []func(context.Context) error{f}
}

// withCredentials moves FC's per-request credentials from the headers into
// the context, where the provider clients look for them, and drops the
// secret headers so no handler can log or echo them.
func withCredentials(r *http.Request) *http.Request {
	id := r.Header.Get(HeaderAccessKeyID)
	if id == "" {
		return r
	}
	c := provider.Credentials{
		AccessKeyID:     id,
		AccessKeySecret: r.Header.Get(HeaderAccessKeySecret),
		SecurityToken:   r.Header.Get(HeaderSecurityToken),
	}
	r = r.WithContext(provider.ContextWithCredentials(r.Context(), c))
	r.Header = r.Header.Clone()
	r.Header.Del(HeaderAccessKeySecret)
	r.Header.Del(HeaderSecurityToken)
	return r
}

// invokeResult is the body of a successful event invocation.
type invokeResult struct {
	Messages int `json:"messages"`
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := logging.RequestID(ctx)
	s.mark("FC Invoke Start RequestId: " + id)
	defer s.mark("FC Invoke End RequestId: " + id)

	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxEvent))
	if err != nil {
		s.fail(w, r, "read event", err)
		return
	}
	msgs := Messages(payload)
	defer s.recoverInvocation(w, r)
	sources := map[string]int{}
	for _, m := range msgs {
		sources[m.Source]++
	}
	s.logger.InfoContext(ctx, "event invocation", "messages", len(msgs), "sources", sources, "bytes", len(payload))
	errs := s.fn.HandleEvents(ctx, msgs)
	if first, n := trigger.FirstError(errs); first != nil {
		for i, err := range errs {
			if err != nil {
				s.logger.WarnContext(ctx, "event message failed", "index", i, "messageId", msgs[i].ID, "source", msgs[i].Source, "err", err)
			}
		}
		s.fail(w, r, fmt.Sprintf("%d of %d messages failed", n, len(msgs)), first)
		return
	}
	w.Header().Set(HeaderStatus, "200")
	httpjson.Write(w, http.StatusOK, invokeResult{Messages: len(msgs)})
}

func (s *Server) hook(w http.ResponseWriter, r *http.Request, name string, fs []func(context.Context) error) {
	id := logging.RequestID(r.Context())
	s.mark("FC " + name + " Start RequestId: " + id)
	defer s.mark("FC " + name + " End RequestId: " + id)
	defer s.recoverInvocation(w, r)
	var errs []error
	for _, f := range fs {
		errs = append(errs, f(r.Context()))
	}
	if err := errors.Join(errs...); err != nil {
		s.fail(w, r, name+" hook failed", err)
		return
	}
	w.Header().Set(HeaderStatus, "200")
	httpjson.Write(w, http.StatusOK, struct{}{})
}

// recoverInvocation turns a panic of the function's handler or hook into a
// function error FC sees, instead of a dropped connection.
func (s *Server) recoverInvocation(w http.ResponseWriter, r *http.Request) {
	if v := recover(); v != nil {
		s.fail(w, r, "the function panicked", fmt.Errorf("panic: %v", v))
	}
}

// fail answers a function error the way FC counts it: 404 with
// x-fc-status: 404 (without the header FC records a success), and the
// shared JSON error body.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.logger.ErrorContext(r.Context(), what, "path", r.URL.Path, "err", err)
	_, body := httpjson.Describe(r.Context(), err)
	w.Header().Set(HeaderStatus, "404")
	httpjson.Write(w, http.StatusNotFound, body)
}

// mark writes one of FC's plain-text log markers on its own line.
func (s *Server) mark(line string) {
	s.stdoutMu.Lock()
	defer s.stdoutMu.Unlock()
	_, _ = io.WriteString(s.stdout, line+"\n")
}

// Serve listens and serves until ctx ends, then stops taking requests and
// drains the in-flight ones (within the shutdown timeout) before returning.
// In-flight requests keep a live context while they drain.
func (s *Server) Serve(ctx context.Context) error {
	ln := s.listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("fc: listen on %s: %w", s.addr, err)
		}
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.logger.InfoContext(ctx, "serving FC custom runtime contract", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fc: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	s.logger.InfoContext(sctx, "stopped serving")
	if err != nil {
		return fmt.Errorf("fc: drain: %w", err)
	}
	return nil
}
