package fc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
)

// Every kind of invocation runs under FC's deadline when FC gives one: the
// deadline header first, else (initializer) the initializer's timeout, else
// the function's timeout; a value that is not FC's is ignored.
func TestDeadlineFromFCHeaders(t *testing.T) {
	seen := make(chan time.Time, 1)
	record := func(ctx context.Context) {
		dl, _ := ctx.Deadline() // zero when there is none
		seen <- dl
	}
	srv, err := fc.New(trigger.Function{
		Name: "deadline",
		HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { record(r.Context()) }),
		Events: trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			record(ctx)
			return make([]error, len(msgs))
		}),
		Initialize: func(ctx context.Context) error { record(ctx); return nil },
	}, fc.WithStdout(io.Discard), fc.WithContract(true))
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Date(2026, 11, 22, 7, 49, 0, 123e6, time.UTC)
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		want    time.Time     // an exact deadline
		timeout time.Duration // else a deadline this long after the request
	}{
		{"event, deadline header", "POST", "/invoke", map[string]string{"x-fc-function-deadline": ms(fixed), "x-fc-function-timeout": "120"}, fixed, 0},
		{"event, timeout only", "POST", "/invoke", map[string]string{"x-fc-function-timeout": "120"}, time.Time{}, 120 * time.Second},
		{"event, none", "POST", "/invoke", nil, time.Time{}, 0},
		{"event, not a number", "POST", "/invoke", map[string]string{"x-fc-function-deadline": "soon", "x-fc-function-timeout": "-3"}, time.Time{}, 0},
		{"event, timeout over a day", "POST", "/invoke", map[string]string{"x-fc-function-timeout": "86401"}, time.Time{}, 0},
		{"http route, deadline header", "GET", "/anything", map[string]string{"x-fc-control-path": "/http-invoke", "x-fc-function-deadline": ms(fixed)}, fixed, 0},
		{"http route, none", "GET", "/anything", nil, time.Time{}, 0},
		{"initializer, its own timeout", "POST", "/initialize", map[string]string{"x-fc-initialization-timeout": "30", "x-fc-function-timeout": "120"}, time.Time{}, 30 * time.Second},
		{"initializer, deadline header", "POST", "/initialize", map[string]string{"x-fc-function-deadline": ms(fixed), "x-fc-initialization-timeout": "30"}, fixed, 0},
		{"initialization timeout means nothing to an event", "POST", "/invoke", map[string]string{"x-fc-initialization-timeout": "30"}, time.Time{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"a":1}`))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			before := time.Now()
			srv.ServeHTTP(httptest.NewRecorder(), req)
			after := time.Now()
			got := <-seen
			switch {
			case !tc.want.IsZero():
				if !got.Equal(tc.want) {
					t.Errorf("deadline %v, want %v", got, tc.want)
				}
			case tc.timeout > 0:
				if got.Before(before.Add(tc.timeout)) || got.After(after.Add(tc.timeout)) {
					t.Errorf("deadline %v, want %v after the request", got, tc.timeout)
				}
			default:
				if !got.IsZero() {
					t.Errorf("deadline %v, want none", got)
				}
			}
		})
	}
}
