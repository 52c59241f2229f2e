package lambda_test

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

// runtimeAPI emulates the Lambda Runtime API (2018-06-01) so that
// aws-lambda-go's real invoke loop runs against it: GET .../invocation/next
// hands out queued events, POST .../{id}/response and .../{id}/error collect
// the answers.
//
// It is never closed: aws-lambda-go's loop waits on /next forever and exits
// the process when that call fails, so the server and the loop stay parked
// until the test binary ends.
type runtimeAPI struct {
	srv     *httptest.Server
	queue   chan invocation
	mu      sync.Mutex
	results map[string]chan result
	seq     int
}

type invocation struct {
	id      string
	payload []byte
}

type result struct {
	kind    string // "response" or "error"
	body    []byte
	errType string
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	t.Helper()
	api := &runtimeAPI{queue: make(chan invocation), results: map[string]chan result{}}
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
		res := result{kind: r.PathValue("kind"), body: body, errType: r.Header.Get("Lambda-Runtime-Function-Error-Type")}
		api.mu.Lock()
		ch := api.results[r.PathValue("id")]
		api.mu.Unlock()
		if ch == nil {
			http.Error(w, "unknown invocation", http.StatusBadRequest)
			return
		}
		ch <- res
		w.WriteHeader(http.StatusAccepted)
	})
	api.srv = httptest.NewServer(mux)
	return api
}

// addr is the value of AWS_LAMBDA_RUNTIME_API.
func (a *runtimeAPI) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// invoke queues one event and waits for the function's answer.
func (a *runtimeAPI) invoke(t *testing.T, payload []byte) result {
	t.Helper()
	a.mu.Lock()
	a.seq++
	id := "lambda-req-" + strconv.Itoa(a.seq)
	ch := make(chan result, 1)
	a.results[id] = ch
	a.mu.Unlock()
	a.queue <- invocation{id: id, payload: payload}
	return <-ch
}
