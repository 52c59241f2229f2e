// Package fcgo1 serves a function under FC3's built-in Go runtime (go1),
// whose contract is the one github.com/aliyun/fc-runtime-go-sdk speaks: the
// process listens on no port but polls FC's runtime API (FC_RUNTIME_API)
// for invocations and posts each answer back.
//
// Each invocation becomes the request FC would have sent the custom runtime
// (POST /invoke, POST /initialize, GET /pre-stop, GET /pre-freeze, or the HTTP
// trigger's own request) and is served by the custom runtime's handler
// (fc.Server), so both runtimes share the routes and their middleware, the
// unwrapping of EventBridge, MNS and timer payloads, the per-invocation
// credentials and FC's deadline.
package fcgo1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
	"github.com/xnum-dev/xnum/internal/trigger/httpevent"
)

// RuntimeAPIEnv is set by FC in the environment of a go1 function: the
// runtime API's host:port.
const RuntimeAPIEnv = "FC_RUNTIME_API"

// Path is the runtime API's base path.
const Path = "/2020-11-11/runtime/invocation/"

// HeaderFunctionType tells what an invocation is (Type*).
const HeaderFunctionType = "X-Fc-Function-Type"

// Invocation types (x-fc-function-type; absent or unparsable is a handler
// invocation).
const (
	TypeHandler     = 0
	TypeInitializer = 1
	TypePreStop     = 2
	TypePreFreeze   = 3
)

// MaxPayloadBytes bounds an invocation's payload: FC's own limit for a
// synchronous invocation.
const MaxPayloadBytes = fc.DefaultMaxEventBytes

// Option configures a Runtime.
type Option func(*Runtime)

// WithLogger sets the JSON logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Runtime) { r.logger = l } }

// WithStdout sets where the FC Invoke Start/End lines go (default
// os.Stdout: FC splits its logs per invocation on them).
func WithStdout(w io.Writer) Option { return func(r *Runtime) { r.stdout = w } }

// WithShutdownTimeout bounds the wait for in-flight invocations when the
// context of Run ends (default 20s).
func WithShutdownTimeout(d time.Duration) Option {
	return func(r *Runtime) { r.shutdownTimeout = d }
}

// Runtime is the invocation loop of one function.
type Runtime struct {
	base            string
	handler         http.Handler
	client          *http.Client
	logger          *slog.Logger
	stdout          io.Writer
	stdoutMu        sync.Mutex
	shutdownTimeout time.Duration
}

// New returns the loop that polls the runtime API at addr (host:port, the
// value of FC_RUNTIME_API) and serves each invocation with h, a handler of
// FC's custom runtime contract. h should write no invocation markers of its
// own: the loop writes them, with the outcome.
func New(addr string, h http.Handler, opts ...Option) (*Runtime, error) {
	u, err := url.Parse("http://" + addr)
	if addr == "" || err != nil || u.Host != addr {
		return nil, fmt.Errorf("fcgo1: %s must be host:port, not %q", RuntimeAPIEnv, addr)
	}
	r := &Runtime{
		base:            "http://" + addr + Path,
		handler:         h,
		client:          &http.Client{},
		logger:          slog.New(slog.DiscardHandler),
		stdout:          os.Stdout,
		shutdownTimeout: 20 * time.Second,
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// invocation is what GET next handed out.
type invocation struct {
	id      string
	header  http.Header
	payload []byte
	tooBig  bool
}

// Run polls for invocations and serves each in its own goroutine, as the
// SDK does, until ctx ends; then it waits for the invocations under way
// (each within FC's deadline) up to the shutdown timeout. A runtime API
// that fails is polled again after a pause that grows to a second.
func (r *Runtime) Run(ctx context.Context) error {
	r.logger.InfoContext(ctx, "serving FC go1 runtime API", "api", strings.TrimSuffix(r.base, Path))
	var wg sync.WaitGroup
	pause := time.Duration(0)
	for ctx.Err() == nil {
		inv, err := r.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			pause = min(max(2*pause, 10*time.Millisecond), time.Second)
			r.logger.WarnContext(ctx, "runtime API: next failed; polling again", "err", err, "pause", pause.String())
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The invocation outlives the loop's context: FC's deadline
			// bounds it, and it must be answered.
			r.serve(context.WithoutCancel(ctx), inv)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		r.logger.InfoContext(ctx, "stopped serving")
		return nil
	case <-time.After(r.shutdownTimeout):
		return fmt.Errorf("fcgo1: invocations still running %v after the stop", r.shutdownTimeout)
	}
}

func (r *Runtime) next(ctx context.Context) (invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"next", nil)
	if err != nil {
		return invocation{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return invocation{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return invocation{}, fmt.Errorf("next answered %d: %q", resp.StatusCode, b)
	}
	inv := invocation{id: resp.Header.Get(fc.HeaderRequestID), header: resp.Header}
	if inv.id == "" {
		return invocation{}, errors.New("next answered an invocation without x-fc-request-id")
	}
	inv.payload, err = io.ReadAll(io.LimitReader(resp.Body, MaxPayloadBytes+1))
	if err != nil {
		return invocation{}, fmt.Errorf("read the payload of %s: %w", inv.id, err)
	}
	if len(inv.payload) > MaxPayloadBytes {
		inv.payload, inv.tooBig = nil, true
	}
	return inv, nil
}

// kinds name the invocation types in FC's log markers and the request of
// the custom runtime contract each stands for.
var kinds = map[int]struct{ marker, method, path string }{
	TypeHandler:     {"Invoke", http.MethodPost, "/invoke"},
	TypeInitializer: {"Initialize", http.MethodPost, "/initialize"},
	TypePreStop:     {"PreStop", http.MethodGet, "/pre-stop"},
	TypePreFreeze:   {"PreFreeze", http.MethodGet, "/pre-freeze"},
}

// serve answers one invocation, bracketed by FC's log markers.
func (r *Runtime) serve(ctx context.Context, inv invocation) {
	typ, err := strconv.Atoi(inv.header.Get(HeaderFunctionType))
	if _, known := kinds[typ]; err != nil || !known {
		typ = TypeHandler
	}
	kind := kinds[typ]
	if httpjson.ValidRequestID(inv.id) {
		ctx = logging.WithRequestID(ctx, inv.id)
	}
	r.mark("FC " + kind.marker + " Start RequestId: " + inv.id)
	res := r.run(ctx, inv, typ)
	end := "FC " + kind.marker + " End RequestId: " + inv.id
	if res.kind != "response" {
		end += ", Error: Unhandled function error"
	}
	r.mark(end)
	r.post(ctx, inv.id, res.kind, res.body)
}

// result is what is posted for an invocation: to .../response or .../error.
type result struct {
	kind string
	body any
}

func failure(typ, message string) result {
	return result{"error", errorDoc{Type: typ, Message: message}}
}

// run serves inv with the handler.
func (r *Runtime) run(ctx context.Context, inv invocation, typ int) (res result) {
	defer func() {
		if v := recover(); v != nil {
			r.logger.ErrorContext(ctx, "invocation panicked", "panic", fmt.Sprint(v))
			res = failure("Internal", "the function panicked (request "+inv.id+")")
		}
	}()
	if inv.tooBig {
		return failure("PayloadTooLarge", fmt.Sprintf("the payload is over %d bytes (request %s)", MaxPayloadBytes, inv.id))
	}
	if typ == TypeHandler {
		if ev, isHTTP := decodeHTTPEvent(inv.payload); isHTTP {
			return r.runHTTP(ctx, inv, ev)
		}
	}
	kind := kinds[typ]
	req, err := http.NewRequestWithContext(ctx, kind.method, kind.path, bytes.NewReader(inv.payload))
	if err != nil {
		return failure("Internal", err.Error())
	}
	req.RequestURI = kind.path
	req.Header = fcHeaders(inv.header)
	req.Header.Set(fc.HeaderControlPath, kind.path)
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get(fc.HeaderStatus) != "200" {
		return result{"error", functionError(inv.id, rec)}
	}
	body := rec.Body.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return result{"response", json.RawMessage(body)}
}

// httpEvent is FC3's HTTP-trigger event as the go1 runtime hands it over.
type httpEvent struct {
	RawPath         string            `json:"rawPath"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Headers         map[string]string `json:"headers"`
	QueryParameters map[string]string `json:"queryParameters"`
	RequestContext  *struct {
		HTTP *struct {
			Method   string `json:"method"`
			Path     string `json:"path"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
	} `json:"requestContext"`
}

// decodeHTTPEvent recognises an HTTP-trigger event by its request context's
// method and a path; anything else is an event for the event handler.
func decodeHTTPEvent(payload []byte) (httpEvent, bool) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, []byte(`"requestContext"`)) {
		return httpEvent{}, false
	}
	var ev httpEvent
	if json.Unmarshal(trimmed, &ev) != nil || ev.RequestContext == nil || ev.RequestContext.HTTP == nil ||
		ev.RequestContext.HTTP.Method == "" || (ev.RawPath == "" && ev.RequestContext.HTTP.Path == "") {
		return httpEvent{}, false
	}
	return ev, true
}

// httpResponse is the answer FC3's HTTP trigger takes from a go1 function.
type httpResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Body            string            `json:"body"`
}

// runHTTP serves an HTTP-trigger event on the function's routes. Any
// answer of the routes, errors included, is the trigger's response.
func (r *Runtime) runHTTP(ctx context.Context, inv invocation, ev httpEvent) result {
	header := http.Header{}
	for k, v := range ev.Headers {
		// The caller's x-fc-* headers are not FC's word: the request id,
		// credentials and deadline come from the runtime API alone.
		if !isFCHeader(k) {
			header.Set(k, v)
		}
	}
	for k, vs := range fcHeaders(inv.header) {
		header[k] = vs
	}
	header.Set(fc.HeaderControlPath, "/http-invoke")
	query := url.Values{}
	for k, v := range ev.QueryParameters {
		query.Set(k, v)
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	req, err := httpevent.NewRequest(ctx, httpevent.Request{
		Method: ev.RequestContext.HTTP.Method, Path: path, RawQuery: query.Encode(),
		Header: header, Body: ev.Body, IsBase64: ev.IsBase64Encoded, SourceIP: ev.RequestContext.HTTP.SourceIP,
	})
	if err != nil {
		r.logger.WarnContext(ctx, "HTTP-trigger event refused", "err", err)
		return failure("InvalidParameter", err.Error()+" (request "+inv.id+")")
	}
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	resp := httpResponse{StatusCode: rec.Code, Headers: map[string]string{}}
	for k, vs := range rec.Header() {
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	resp.Body, resp.IsBase64Encoded = httpevent.Body(rec.Header(), rec.Body.Bytes())
	return result{"response", resp}
}

func isFCHeader(name string) bool {
	return len(name) >= 5 && strings.EqualFold(name[:5], "x-fc-")
}

// fcHeaders are the invocation's x-fc-* headers from the runtime API: the
// request id, the role's credentials, the deadline and the function's facts,
// as FC sends them to a custom runtime.
func fcHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		if isFCHeader(k) {
			out[k] = vs
		}
	}
	return out
}

// errorDoc is the body of POST .../error.
type errorDoc struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// functionError turns the custom runtime's function error (the shared JSON
// error body) into the runtime API's error document: the taxonomy code as
// the type, the same safe message HTTP callers get.
func functionError(id string, rec *httptest.ResponseRecorder) errorDoc {
	var body httpjson.ErrorBody
	if json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code == "" {
		return errorDoc{Type: "Internal", Message: fmt.Sprintf("the function answered %d (request %s)", rec.Code, id)}
	}
	return errorDoc{Type: body.Error.Code, Message: body.Error.Message + " (request " + body.Error.RequestID + ")"}
}

// post sends the result of invocation id to .../id/kind ("response" or
// "error"). A runtime API that refuses it is logged: FC then ends the
// invocation at its deadline.
func (r *Runtime) post(ctx context.Context, id, kind string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		r.logger.ErrorContext(ctx, "runtime API: cannot encode the result", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, r.base+url.PathEscape(id)+"/"+kind, bytes.NewReader(b))
	if err != nil {
		r.logger.ErrorContext(ctx, "runtime API: cannot post the result", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		r.logger.ErrorContext(ctx, "runtime API: posting the result failed", "kind", kind, "err", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		r.logger.ErrorContext(ctx, "runtime API refused the result", "kind", kind, "status", resp.StatusCode)
	}
}

// mark writes one of FC's plain-text log markers on its own line.
func (r *Runtime) mark(line string) {
	r.stdoutMu.Lock()
	defer r.stdoutMu.Unlock()
	_, _ = io.WriteString(r.stdout, line+"\n")
}
