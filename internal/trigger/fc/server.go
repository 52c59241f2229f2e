// Package fc serves a trigger.Function under Alibaba Cloud Function Compute
// 3.0's custom runtime contract: a plain HTTP server at the port FC gives,
// where HTTP-trigger requests reach the function's own routes and event
// invocations arrive as POST /invoke, lifecycle hooks as POST /initialize,
// GET /pre-freeze and GET /pre-stop, with the role's credentials and the
// request id in x-fc-* headers, and FC's health check as GET /healthz
// (customRuntimeConfig.healthCheckConfig).
//
// That contract is honoured only when the Server is told FC runs the process
// (WithContract): behind FC only FC can send those paths and headers.
// Anywhere else the Server serves the function's routes alone (and
// GET /healthz): the control paths are the routes' 404 and every x-fc-*
// header is dropped unread.
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
	HeaderRequestID       = "X-Fc-Request-Id"
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

// defaultAddr is where a Server listens without WithAddr or WithListener:
// loopback, as a server that is not behind FC serves no one else unless
// told to (config.LoadHTTPAddr gives the address FC needs).
const defaultAddr = "127.0.0.1:9000"

// DefaultMaxEventBytes bounds an event payload: FC's own limit for a
// synchronous invocation is 32 MB (128 KB for an asynchronous one), so no
// event FC delivers is refused.
const DefaultMaxEventBytes = 32 << 20

// The server's timeouts. Requests come from FC's front end over its own
// network, or from a caller on the same machine off FC; none has a reason to
// be slow to send, and a slow sender holds a goroutine and a buffer.
const (
	// readHeaderTimeout bounds the arrival of a request's headers.
	readHeaderTimeout = 10 * time.Second
	// defaultReadTimeout bounds the arrival of headers and body together:
	// the largest body (a 32 MB event from FC's network, a 64 KiB order)
	// takes far less, and a body trickled byte by byte is cut there.
	defaultReadTimeout = 15 * time.Second
	// writeTimeout bounds a route's answer from the end of its request, so
	// no caller that stops reading holds a connection: the slowest route
	// (remain: three 10 s attempts with backoff) answers well within it.
	// FC's invocations and hooks have none: FC bounds them by the
	// function's timeout (a buy drain runs for minutes).
	writeTimeout = time.Minute
	// idleTimeout closes a kept-alive connection no request has used for
	// that long: FC's front end reuses its connections within it, and an
	// idle one costs a goroutine and buffers.
	idleTimeout = 2 * time.Minute
)

// Option configures a Server.
type Option func(*Server)

// WithAddr sets the address to listen on (default 127.0.0.1:9000).
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

// WithContract says whether Function Compute runs the process
// (config.OnFC): only then are FC's control paths, lifecycle hooks and x-fc-*
// headers honoured. Default false: the function's routes alone.
func WithContract(onFC bool) Option { return func(s *Server) { s.contract = onFC } }

// WithReadTimeout sets the bound on a request's headers and body (default
// defaultReadTimeout, 15 s).
func WithReadTimeout(d time.Duration) Option { return func(s *Server) { s.readTimeout = d } }

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
	readTimeout     time.Duration
	contract        bool
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
		readTimeout:     defaultReadTimeout,
		addr:            defaultAddr,
	}
	for _, o := range opts {
		o(s)
	}
	routes := fn.HTTP
	if routes == nil {
		mux := httpjson.NewMux() // every path is a JSON 404
		routes = mux
	}
	s.routes = httpjson.Recover(httpjson.LimitBody(routes, httpjson.MaxBodyBytes), s.logger)
	s.handler = liftReadDeadline(healthz(s.trust(httpjson.RequestID(httpjson.Trace(httpjson.AccessLog(http.HandlerFunc(s.dispatch), s.logger))))))
	return s, nil
}

// ServeHTTP serves one request of FC's contract.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// trust keeps of FC's headers what the platform guarantees. On FC,
// x-fc-request-id names the request: FC sets it, and an HTTP trigger's
// caller cannot. Elsewhere every x-fc-* header is the caller's own and is
// dropped unread, so that no handler takes a caller's credentials or request
// id for FC's.
func (s *Server) trust(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.contract {
			if id := r.Header.Get(HeaderRequestID); httpjson.ValidRequestID(id) {
				r = r.WithContext(logging.WithRequestID(r.Context(), id))
			}
		} else {
			for name := range r.Header {
				if len(name) > 5 && strings.EqualFold(name[:5], "X-Fc-") {
					delete(r.Header, name)
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// dispatch serves a request off FC with the function's routes. On FC it takes
// the per-request STS credentials out of the headers into the context, then
// routes by x-fc-control-path when FC sends it, else by method and path,
// with FC's deadline on the context when FC gives one.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if !s.contract {
		s.routes.ServeHTTP(w, r)
		return
	}
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
	invocation := op == "/invoke" || op != "/initialize" && op != "/pre-stop" && op != "/pre-freeze" && r.Header.Get(HeaderRequestID) != ""
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
	default: // "/http-invoke": an HTTP trigger's request to one of the routes
		// FC splits an HTTP function's logs per request on the same markers.
		if r.Header.Get(HeaderRequestID) != "" {
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
	noWriteDeadline(w)

	// Refused unread, the payload would only cost memory; closing the
	// connection spares net/http draining what is left of it.
	if s.fn.Events == nil {
		w.Header().Set("Connection", "close")
		s.fail(w, r, "event invocation", s.fn.NoEvents())
		return
	}
	if r.ContentLength > s.maxEvent {
		w.Header().Set("Connection", "close")
		s.fail(w, r, "event invocation", &http.MaxBytesError{Limit: s.maxEvent})
		return
	}
	payload, err := readEvent(w, r, s.maxEvent)
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

// readEvent reads an event payload of at most max bytes into one buffer of
// the size its Content-Length announces (FC always sends one), without the
// growing copies of io.ReadAll.
func readEvent(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength < 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (s *Server) hook(w http.ResponseWriter, r *http.Request, name string, fs []func(context.Context) error) {
	noWriteDeadline(w)
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
		ReadHeaderTimeout: min(readHeaderTimeout, s.readTimeout),
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.logger.InfoContext(ctx, "serving", "addr", ln.Addr().String(), "fcContract", s.contract)
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
