// Package fcgo1test emulates FC3's go1 runtime API (2020-11-11) for tests,
// as fc-runtime-go-sdk's loop meets it on FC: invocations are handed out on
// GET .../invocation/next with FC's x-fc-* headers, and the function posts
// each answer to .../{requestId}/response or .../{requestId}/error.
package fcgo1test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RuntimeAPI is an emulated runtime API on a loopback port.
type RuntimeAPI struct {
	srv      *httptest.Server
	queue    chan pending
	closed   chan struct{}
	mu       sync.Mutex
	results  map[string]chan Result
	seq      int
	failNext int
	strays   int
}

type pending struct {
	id      string
	header  http.Header
	payload []byte
}

// Invocation is one invocation to hand to the function.
type Invocation struct {
	// Type is x-fc-function-type: 0 handler, 1 initializer, 2 preStop,
	// 3 preFreeze.
	Type    int
	Payload []byte
	// RequestID is x-fc-request-id (default "fc-go1-req-N").
	RequestID string
	// Timeout is the function's timeout (default a minute); the deadline is
	// that long from when the invocation is handed out unless Deadline says
	// otherwise.
	Timeout  time.Duration
	Deadline time.Time
	// Header adds headers, such as the role's credentials
	// (x-fc-access-key-id, x-fc-access-key-secret, x-fc-security-token).
	Header map[string]string
}

// Result is what the function posted for one invocation.
type Result struct {
	Kind string // "response" or "error"
	Body []byte
}

// NewRuntimeAPI starts an emulated runtime API, closed when the test ends
// (after the function's run, whose cleanup was registered later).
func NewRuntimeAPI(t testing.TB) *RuntimeAPI {
	t.Helper()
	a := &RuntimeAPI{queue: make(chan pending), closed: make(chan struct{}), results: map[string]chan Result{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2020-11-11/runtime/invocation/next", a.next)
	mux.HandleFunc("POST /2020-11-11/runtime/invocation/{id}/{kind}", a.result)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(a.closed)
		a.srv.Close()
	})
	return a
}

// Addr is the value of FC_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// FailNext makes the next n calls of GET next answer 500, as a runtime API
// in trouble would.
func (a *RuntimeAPI) FailNext(n int) {
	a.mu.Lock()
	a.failNext = n
	a.mu.Unlock()
}

// Strays counts results posted for no invocation waiting on one (an
// unknown id, or a second answer).
func (a *RuntimeAPI) Strays() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.strays
}

func (a *RuntimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	fail := a.failNext > 0
	if fail {
		a.failNext--
	}
	a.mu.Unlock()
	if fail {
		http.Error(w, "runtime API is having a bad day", http.StatusInternalServerError)
		return
	}
	select {
	case p := <-a.queue:
		for k, vs := range p.header {
			w.Header()[k] = vs
		}
		_, _ = w.Write(p.payload)
	case <-r.Context().Done():
	case <-a.closed:
		http.Error(w, "runtime API closed", http.StatusServiceUnavailable)
	}
}

func (a *RuntimeAPI) result(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, kind := r.PathValue("id"), r.PathValue("kind")
	a.mu.Lock()
	ch := a.results[id]
	delete(a.results, id)
	if ch == nil || (kind != "response" && kind != "error") || r.Header.Get("Content-Type") != "application/json" {
		a.strays++
		a.mu.Unlock()
		http.Error(w, "unknown invocation or kind", http.StatusBadRequest)
		return
	}
	a.mu.Unlock()
	ch <- Result{Kind: kind, Body: body}
	w.WriteHeader(http.StatusAccepted)
}

// Invoke hands inv to the function's next poll and waits for its answer.
func (a *RuntimeAPI) Invoke(t testing.TB, inv Invocation) Result {
	t.Helper()
	a.mu.Lock()
	a.seq++
	if inv.RequestID == "" {
		inv.RequestID = "fc-go1-req-" + strconv.Itoa(a.seq)
	}
	ch := make(chan Result, 1)
	a.results[inv.RequestID] = ch
	a.mu.Unlock()
	if inv.Timeout <= 0 {
		inv.Timeout = time.Minute
	}
	deadline := inv.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(inv.Timeout)
	}
	h := http.Header{}
	for k, v := range map[string]string{
		"x-fc-request-id":        inv.RequestID,
		"x-fc-function-deadline": strconv.FormatInt(deadline.UnixMilli(), 10),
		"x-fc-function-timeout":  strconv.Itoa(int(inv.Timeout / time.Second)),
		"x-fc-function-type":     strconv.Itoa(inv.Type),
		"x-fc-function-name":     "xnum-test",
		"x-fc-function-handler":  "main",
		"x-fc-function-memory":   "128",
		"x-fc-region":            "cn-hangzhou",
		"x-fc-account-id":        "1234567890123456",
		"x-fc-retry-count":       "0",
		"Content-Type":           "application/octet-stream",
	} {
		h.Set(k, v)
	}
	for k, v := range inv.Header {
		h.Set(k, v)
	}
	select {
	case a.queue <- pending{id: inv.RequestID, header: h, payload: inv.Payload}:
	case <-time.After(time.Minute):
		t.Fatalf("fcgo1test: the function did not poll for invocation %s", inv.RequestID)
	}
	select {
	case res := <-ch:
		return res
	case <-time.After(2 * time.Minute):
		t.Fatalf("fcgo1test: no answer to invocation %s", inv.RequestID)
		return Result{}
	}
}

// HTTPEvent returns FC3's HTTP-trigger event for a request: target is the
// path and query ("/remain?city=杭州&specId=1"), header the caller's
// headers.
func HTTPEvent(method, target string, header map[string]string, body string) []byte {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic("fcgo1test: HTTPEvent: " + err.Error())
	}
	query := map[string]string{}
	for k, vs := range u.Query() {
		query[k] = vs[0]
	}
	if header == nil {
		header = map[string]string{}
	}
	now := time.Now()
	ev := map[string]any{
		"version":         "v1",
		"rawPath":         u.Path,
		"body":            body,
		"isBase64Encoded": false,
		"headers":         header,
		"queryParameters": query,
		"requestContext": map[string]any{
			"accountId":    "1234567890123456",
			"domainName":   "xnum-test.cn-hangzhou.fcapp.run",
			"domainPrefix": "xnum-test",
			"http": map[string]string{
				"method":    method,
				"path":      u.Path,
				"protocol":  "HTTP/1.1",
				"sourceIp":  "203.0.113.7",
				"userAgent": "fcgo1test",
			},
			"requestId": "http-" + strconv.FormatInt(now.UnixNano(), 36),
			"time":      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			"timeEpoch": strconv.FormatInt(now.UnixMilli(), 10),
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

// HTTPResponse is the answer of an HTTP-trigger invocation.
type HTTPResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Body            string            `json:"body"`
}

// HTTP decodes r as the answer of an HTTP-trigger invocation; the test
// fails if it is not one.
func (r Result) HTTP(t testing.TB) HTTPResponse {
	t.Helper()
	var resp HTTPResponse
	if r.Kind != "response" || json.Unmarshal(r.Body, &resp) != nil || resp.StatusCode == 0 || resp.Headers == nil {
		t.Fatalf("not an HTTP-trigger answer: %s %s", r.Kind, r.Body)
	}
	return resp
}

// ErrorDoc is the body of an error result.
type ErrorDoc struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// Error decodes r as an error result; the test fails if it is not one.
func (r Result) Error(t testing.TB) ErrorDoc {
	t.Helper()
	var doc ErrorDoc
	if r.Kind != "error" || json.Unmarshal(r.Body, &doc) != nil || doc.Type == "" || doc.Message == "" {
		t.Fatalf("not an error result: %s %s", r.Kind, r.Body)
	}
	return doc
}
