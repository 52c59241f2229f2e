// Package fc emulates Alibaba Cloud Function Compute 3.0's InvokeFunction
// (2023-03-30) as an http.Handler, and runs the functions it invokes over
// FC's custom runtime contract, so that a function that wakes another up
// can be run and tested on one machine.
//
// POST /2023-03-30/functions/{name}/invocations with
// X-Fc-Invocation-Type: Async is checked as FC's gateway checks it — the V3
// signature (ACS3-HMAC-SHA256: every x-acs-* header and host signed,
// x-acs-content-sha256 the body's, x-acs-date within 15 minutes, a nonce
// used once, an STS key's token in x-acs-security-token) — and answered 202
// with x-fc-request-id and no body. The invocation then runs in the
// background: POST {function URL}/invoke with FC's headers
// (x-fc-request-id, x-fc-control-path: /invoke, the role's
// x-fc-access-key-id, x-fc-access-key-secret and x-fc-security-token,
// x-fc-function-name, x-fc-function-memory, x-fc-region, x-fc-account-id,
// x-fc-qualifier, x-fc-retry-count) and the payload as the body, within the
// function's timeout and concurrency. An answer with x-fc-status: 404 (a
// function error), any other status than 2xx, a refused connection or the
// timeout fails the attempt; a failed invocation is retried as the
// function's Retries say (FC's maxAsyncRetryAttempts), with a growing delay.
//
// Errors are FC 3.0's: {"Code":"...","Message":"...","RequestId":"..."}
// with FC's statuses — FunctionNotFound 404, SignatureNotMatch,
// InvalidAccessKeyID and AccessDenied 403, MissingRequiredHeader,
// InvalidArgument, PathNotSupported and EntityTooLarge 400.
//
// Choices where FC's documents are silent or the emulator is narrower:
//   - Only asynchronous invocations are served; X-Fc-Invocation-Type Sync
//     (FC's default) is InvalidArgument, so a caller that forgot the header
//     finds out.
//   - An asynchronous payload over 128 KB is EntityTooLarge.
//   - A date out of the 15 minutes and a reused nonce are AccessDenied.
//   - Functions are registered (Register), not deployed; the qualifier is
//     ignored beyond being passed on.
package fc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// APIVersion is the FC API version served.
const APIVersion = "2023-03-30"

// MaxAsyncPayload is FC's limit on an asynchronous invocation's payload.
const MaxAsyncPayload = 128 << 10

// The credentials the emulator accepts when no WithKey or WithSTSToken is
// given: the project's development key pair.
const (
	DefaultAccessKeyID     = "xnum-dev-key"
	DefaultAccessKeySecret = "xnum-dev-secret"
)

// Defaults of the account FC reports to functions.
const (
	DefaultAccountID = "1234567890123456"
	DefaultRegion    = "cn-hangzhou"
)

// Credentials are an access key pair, temporary when SecurityToken is set.
type Credentials struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
}

// Function is a function the emulator can invoke: a server speaking FC's
// custom runtime contract.
type Function struct {
	Name string
	// URL is the base URL of the function's server, such as
	// http://127.0.0.1:9000; events go to URL/invoke.
	URL string
	// Concurrency bounds the invocations running at once (default 1: an
	// instance concurrency of 1 on one instance, as xnum-buy-worker runs).
	Concurrency int
	// Timeout bounds one invocation (default 60s).
	Timeout time.Duration
	// Retries is how often a failed asynchronous invocation is tried again
	// (FC's maxAsyncRetryAttempts; 0: never).
	Retries int
	// MemoryMB is reported in x-fc-function-memory (default 128).
	MemoryMB int
}

// Invocation is what became of one accepted invocation.
type Invocation struct {
	RequestID string
	Function  string
	Payload   []byte
	Attempts  int    // tries made so far
	Done      bool   // no try is left or under way
	Succeeded bool   // the last try succeeded
	Err       string // why the last try failed
}

// Server is the emulated FC API and the runner of its functions. It is safe
// for concurrent use; Close stops it.
type Server struct {
	verifier   verifier
	log        *slog.Logger
	client     *http.Client
	role       *Credentials
	account    string
	region     string
	retryDelay time.Duration

	ctx    context.Context // ends with Close: in-flight invocations are cancelled
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	functions   map[string]*registered
	invocations []*Invocation
}

type registered struct {
	Function
	sem chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// WithKey makes the server accept a long-term access key; it may be given
// more than once.
func WithKey(accessKeyID, secret string) Option {
	return func(s *Server) { s.verifier.keys[accessKeyID] = key{secret: secret} }
}

// WithSTSToken makes the server accept a temporary access key, whose calls
// must carry token in x-acs-security-token.
func WithSTSToken(accessKeyID, secret, token string) Option {
	return func(s *Server) { s.verifier.keys[accessKeyID] = key{secret: secret, token: token} }
}

// WithRole sets the credentials FC passes to the functions it invokes, as
// the function role's (default: the first key given, or the default pair).
func WithRole(c Credentials) Option { return func(s *Server) { s.role = &c } }

// WithAccount sets the account id and region reported to functions.
func WithAccount(accountID, region string) Option {
	return func(s *Server) { s.account, s.region = accountID, region }
}

// WithClock sets the clock x-acs-date is checked against.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.verifier.now = now } }

// WithLogger logs each call and invocation attempt; by default nothing is
// logged. No secret, token or signature is logged.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRetryDelay sets the delay before the first retry of a failed
// invocation; each next one waits twice as long (default 1s).
func WithRetryDelay(d time.Duration) Option { return func(s *Server) { s.retryDelay = d } }

// WithHTTPClient sets the client that calls the functions.
func WithHTTPClient(c *http.Client) Option { return func(s *Server) { s.client = c } }

// New returns a server with no functions.
func New(opts ...Option) *Server {
	s := &Server{
		verifier:   verifier{keys: map[string]key{}, now: time.Now, nonces: map[string]time.Time{}},
		log:        slog.New(slog.DiscardHandler),
		client:     &http.Client{},
		account:    DefaultAccountID,
		region:     DefaultRegion,
		retryDelay: time.Second,
		functions:  map[string]*registered{},
	}
	var firstKey *Credentials
	for _, o := range opts {
		o(s)
	}
	if len(s.verifier.keys) == 0 {
		s.verifier.keys[DefaultAccessKeyID] = key{secret: DefaultAccessKeySecret}
	}
	for id, k := range s.verifier.keys {
		if firstKey == nil || id < firstKey.AccessKeyID {
			firstKey = &Credentials{AccessKeyID: id, AccessKeySecret: k.secret, SecurityToken: k.token}
		}
	}
	if s.role == nil {
		s.role = firstKey
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Register makes f invokable, replacing a function of the same name.
func (s *Server) Register(f Function) error {
	if f.Name == "" || f.URL == "" {
		return fmt.Errorf("fc: a function needs a name and a URL")
	}
	if f.Concurrency <= 0 {
		f.Concurrency = 1
	}
	if f.Timeout <= 0 {
		f.Timeout = time.Minute
	}
	if f.MemoryMB <= 0 {
		f.MemoryMB = 128
	}
	f.URL = strings.TrimRight(f.URL, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.functions[f.Name] = &registered{Function: f, sem: make(chan struct{}, f.Concurrency)}
	return nil
}

// Invocations returns a copy of every invocation accepted so far, oldest
// first.
func (s *Server) Invocations() []Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invocation, len(s.invocations))
	for i, inv := range s.invocations {
		out[i] = *inv
		out[i].Payload = append([]byte(nil), inv.Payload...)
	}
	return out
}

// Close cancels the invocations under way, drops those waiting, and returns
// once every one has stopped.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Invoke queues an asynchronous invocation of the function name with
// payload, as InvokeFunction does once the call is authenticated (and as a
// trigger does), and returns its request id.
func (s *Server) Invoke(name string, payload []byte) (string, error) {
	id := newRequestID()
	if err := s.enqueue(name, id, payload); err != nil {
		return "", err
	}
	return id, nil
}

// enqueue starts the invocation id of the function name in the background.
func (s *Server) enqueue(name, id string, payload []byte) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.functions[name]
	switch {
	case s.closed:
		return errorf(http.StatusServiceUnavailable, "InternalServerError", "the emulator is closing")
	case !ok:
		return errorf(http.StatusNotFound, "FunctionNotFound", "function '%s' does not exist", name)
	}
	inv := &Invocation{RequestID: id, Function: name, Payload: append([]byte(nil), payload...)}
	s.invocations = append(s.invocations, inv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(f, inv)
	}()
	return nil
}

// Timer invokes the function asynchronously with FC's timer event
// ({"triggerTime","triggerName","payload"}) every interval until ctx ends,
// as a timer trigger does.
func (s *Server) Timer(ctx context.Context, function, trigger, payload string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			ev, _ := json.Marshal(map[string]string{
				"triggerTime": now.UTC().Format(dateLayout), "triggerName": trigger, "payload": payload})
			if _, err := s.Invoke(function, ev); err != nil {
				s.log.Warn("fc timer could not invoke", "function", function, "trigger", trigger, "err", err)
			}
		}
	}
}

// run tries inv until it succeeds, its retries are spent or the server
// closes.
func (s *Server) run(f *registered, inv *Invocation) {
	delay := s.retryDelay
	for attempt := 0; ; attempt++ {
		select {
		case f.sem <- struct{}{}:
		case <-s.ctx.Done():
			s.finish(inv, false, "the emulator closed before the invocation ran")
			return
		}
		err := s.attempt(f, inv, attempt)
		<-f.sem
		s.mu.Lock()
		inv.Attempts++
		s.mu.Unlock()
		if err == nil {
			s.finish(inv, true, "")
			return
		}
		s.log.Info("fc invocation failed", "function", f.Name, "requestId", inv.RequestID, "attempt", attempt+1, "err", err.Error())
		if attempt >= f.Retries {
			s.finish(inv, false, err.Error())
			return
		}
		s.mu.Lock()
		inv.Err = err.Error()
		s.mu.Unlock()
		select {
		case <-time.After(delay):
			delay *= 2
		case <-s.ctx.Done():
			s.finish(inv, false, err.Error())
			return
		}
	}
}

func (s *Server) finish(inv *Invocation, ok bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv.Done, inv.Succeeded, inv.Err = true, ok, why
}

// attempt makes one POST /invoke of inv to f under FC's custom runtime
// contract.
func (s *Server) attempt(f *registered, inv *Invocation, retry int) error {
	ctx, cancel := context.WithTimeout(s.ctx, f.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/invoke", strings.NewReader(string(inv.Payload)))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", "application/octet-stream")
	h.Set("x-fc-request-id", inv.RequestID)
	h.Set("x-fc-control-path", "/invoke")
	h.Set("x-fc-function-name", f.Name)
	h.Set("x-fc-function-handler", "index.handler")
	h.Set("x-fc-function-memory", fmt.Sprint(f.MemoryMB))
	h.Set("x-fc-region", s.region)
	h.Set("x-fc-account-id", s.account)
	h.Set("x-fc-qualifier", "LATEST")
	h.Set("x-fc-retry-count", fmt.Sprint(retry))
	if s.role != nil {
		h.Set("x-fc-access-key-id", s.role.AccessKeyID)
		h.Set("x-fc-access-key-secret", s.role.AccessKeySecret)
		if s.role.SecurityToken != "" {
			h.Set("x-fc-security-token", s.role.SecurityToken)
		}
	}
	started := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s/invoke: %w", f.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	s.log.Debug("fc invocation answered", "function", f.Name, "requestId", inv.RequestID,
		"status", resp.StatusCode, "fcStatus", resp.Header.Get("x-fc-status"), "took", time.Since(started).String())
	if st := resp.Header.Get("x-fc-status"); st != "" && st != "200" {
		return fmt.Errorf("function error (x-fc-status %s): %s", st, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// apiError is an FC error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers InvokeFunction.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	w.Header().Set("x-fc-request-id", id)
	name, err := s.serve(r, id)
	if err != nil {
		s.log.Info("fc call refused", "requestId", id, "path", r.URL.Path, "code", err.code, "message", err.message)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(err.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Code": err.code, "Message": err.message, "RequestId": id})
		return
	}
	s.log.Info("fc call", "requestId", id, "action", "InvokeFunction", "function", name)
	w.WriteHeader(http.StatusAccepted)
}

// serve checks one call and queues its invocation; the accepted invocation
// keeps the call's request id, as FC's does.
func (s *Server) serve(r *http.Request, id string) (string, *apiError) {
	const prefix, suffix = "/" + APIVersion + "/functions/", "/invocations"
	path := r.URL.Path
	name := strings.TrimSuffix(strings.TrimPrefix(path, prefix), suffix)
	if r.Method != http.MethodPost || !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, suffix) || name == "" || strings.Contains(name, "/") {
		return "", errorf(http.StatusBadRequest, "PathNotSupported", "'%s' against '%s' is not supported", r.Method, path)
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return name, errorf(http.StatusBadRequest, "InvalidArgument", "the query string is malformed")
	}
	body, rerr := io.ReadAll(io.LimitReader(r.Body, MaxAsyncPayload+1))
	if rerr != nil {
		return name, errorf(http.StatusBadRequest, "InvalidArgument", "the body could not be read")
	}
	if _, err := s.verifier.verify(r, body); err != nil {
		return name, err
	}
	if t := r.Header.Get("x-fc-invocation-type"); !strings.EqualFold(t, "Async") {
		return name, errorf(http.StatusBadRequest, "InvalidArgument",
			"the emulator serves asynchronous invocations only (X-Fc-Invocation-Type: Async), not %q", t)
	}
	if len(body) > MaxAsyncPayload {
		return name, errorf(http.StatusBadRequest, "EntityTooLarge", "payload size exceeds maximum allowed size (%d bytes)", MaxAsyncPayload)
	}
	return name, s.enqueue(name, id, body)
}

// newRequestID is shaped as FC's: 1-{seconds in hex}-{24 hex digits}.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("1-%08x-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
}
