// Package lambdatest emulates the AWS Lambda Runtime API (2018-06-01) for
// tests, so that aws-lambda-go's real invoke loop (lambda.Start) runs
// against it, as net/http/httptest does for HTTP handlers.
package lambdatest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RuntimeAPI hands out queued events on GET .../invocation/next and
// collects the answers posted to .../{id}/response and .../{id}/error.
//
// It is never closed: aws-lambda-go's loop waits on /next forever and exits
// the process when that call fails, so the server and the loop stay parked
// until the test binary ends.
type RuntimeAPI struct {
	srv        *httptest.Server
	queue      chan invocation
	mu         sync.Mutex
	results    map[string]chan Result
	seq        int
	extensions []string
}

type invocation struct {
	id      string
	payload []byte
}

// Result is what the function answered to one invocation.
type Result struct {
	Kind string // "response" or "error"
	Body []byte // the response, or the error document {"errorMessage","errorType"}
}

// NewRuntimeAPI starts an emulated Runtime API on a loopback port.
func NewRuntimeAPI() *RuntimeAPI {
	api := &RuntimeAPI{queue: make(chan invocation), results: map[string]chan Result{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-api.queue:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-west-2:123456789012:function:xnum-test")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c")
			_, _ = w.Write(inv.payload)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		ch := api.results[r.PathValue("id")]
		delete(api.results, r.PathValue("id"))
		api.mu.Unlock()
		if ch == nil {
			http.Error(w, "unknown invocation", http.StatusBadRequest)
			return
		}
		ch <- Result{Kind: r.PathValue("kind"), Body: body}
		w.WriteHeader(http.StatusAccepted)
	})
	// The Extensions API (2020-01-01), as far as a function's internal
	// extension uses it: registering one makes Lambda send SIGTERM before
	// it shuts an instance down (aws-lambda-go's WithEnableSIGTERM).
	mux.HandleFunc("POST /2020-01-01/extension/register", func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("Lambda-Extension-Name")
		api.mu.Lock()
		api.extensions = append(api.extensions, name)
		api.mu.Unlock()
		w.Header().Set("Lambda-Extension-Identifier", "ext-"+name)
		_, _ = io.WriteString(w, `{}`)
	})
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // an extension registered for no events waits for ever
	})
	api.srv = httptest.NewServer(mux)
	return api
}

// Extensions are the names of the extensions registered so far.
func (a *RuntimeAPI) Extensions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.extensions...)
}

// Addr is the value of AWS_LAMBDA_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// Invoke queues one event with a new request id ("lambda-req-1", ...) and
// waits for the function's answer.
func (a *RuntimeAPI) Invoke(t testing.TB, payload []byte) Result {
	t.Helper()
	a.mu.Lock()
	a.seq++
	id := "lambda-req-" + strconv.Itoa(a.seq)
	ch := make(chan Result, 1)
	a.results[id] = ch
	a.mu.Unlock()
	a.queue <- invocation{id: id, payload: payload}
	return <-ch
}
