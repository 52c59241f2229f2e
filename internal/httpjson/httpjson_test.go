package httpjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/pkg/provider"
)

const secret = "TopSecretValue42"

func TestDescribe(t *testing.T) {
	ctx := logging.WithRequestID(context.Background(), "rid")
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code, msg  string
		notContain string
	}{
		{"validation", provider.Invalid("specId", "specId must be 1, 2 or 3"), 400, "InvalidParameter", "specId must be 1, 2 or 3", ""},
		{"provider throttled", &provider.Error{Kind: provider.ErrThrottled, Provider: "aliyun", Op: "QuerySecretNoRemain", Code: "Throttling.User", Message: "Request was denied due to user flow control."}, 429, "Throttled", "aliyun: Request was denied due to user flow control.", ""},
		{"unauthorized echoes string to sign", &provider.Error{Kind: provider.ErrUnauthorized, Provider: "aliyun", Code: "SignatureDoesNotMatch", Message: "server string to sign is:GET&%2F&SecurityToken%3D" + secret}, 502, "Unauthorized", "aliyun refused the function's credentials (SignatureDoesNotMatch)", secret},
		{"internal hides cause", fmt.Errorf("decode %s: %w", secret, errors.New("boom")), 500, "Internal", "internal error; the request id names it in the logs", secret},
		{"bare kind", fmt.Errorf("order x: %w", provider.ErrNotFound), 404, "NotFound", "not found", ""},
		{"provider message with cause", &provider.Error{Kind: provider.ErrUnavailable, Provider: "volcengine", Message: "service busy", Err: errors.New("dial tcp: Signature=" + secret)}, 503, "Unavailable", "volcengine: service busy", secret},
		{"status error", &httpjson.StatusError{Status: 405, Code: "MethodNotAllowed", Message: "no\nnewlines\there"}, 405, "MethodNotAllowed", "no newlines here", ""},
		{"too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, "PayloadTooLarge", "the request body is larger than 10 bytes", ""},
		{"in doubt", &provider.Error{Kind: provider.ErrInDoubt, Provider: "aliyun", Err: errors.New("timeout")}, 504, "InDoubt", "the outcome is unknown; it is being reconciled", "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := httpjson.Describe(ctx, tc.err)
			if status != tc.status || body.Error.Code != tc.code || body.Error.Message != tc.msg || body.Error.RequestID != "rid" {
				t.Errorf("Describe = %d %+v, want %d %s %q rid", status, body, tc.status, tc.code, tc.msg)
			}
			if tc.notContain != "" && strings.Contains(body.Error.Message, tc.notContain) {
				t.Errorf("message %q leaks %q", body.Error.Message, tc.notContain)
			}
		})
	}
}

func decodeError(t *testing.T, r io.Reader) httpjson.ErrorBody {
	t.Helper()
	var b httpjson.ErrorBody
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	return b
}

type order struct {
	Quantity int    `json:"quantity"`
	City     string `json:"city"`
}

func newServer(t *testing.T) (*httptest.Server, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	logger := logging.New(logs, logging.Options{Level: slog.LevelDebug})
	mux := httpjson.NewMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		tc, _ := traceparent.From(r.Context())
		httpjson.Write(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "requestId": logging.RequestID(r.Context()), "traceparent": tc.String()})
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var o order
		if err := httpjson.Decode(r, &o); err != nil {
			httpjson.WriteError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusAccepted, o)
	})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("kaput") })
	srv := httptest.NewServer(httpjson.Wrap(mux, logger))
	t.Cleanup(srv.Close)
	return srv, logs
}

func TestServerContract(t *testing.T) {
	srv, logs := newServer(t)
	big := `{"city":"` + strings.Repeat("a", httpjson.MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code, allow              string
		chunked                  bool
	}{
		{name: "route", method: "GET", path: "/items/7", status: 200},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, code: "NotFound"},
		{name: "wrong method", method: "DELETE", path: "/items/7", status: 405, code: "MethodNotAllowed", allow: "GET, HEAD"},
		{name: "decode ok", method: "POST", path: "/orders", body: `{"quantity":2,"city":"杭州"}`, status: 202},
		{name: "unknown field", method: "POST", path: "/orders", body: `{"quantiy":2}`, status: 400, code: "InvalidParameter"},
		{name: "wrong type", method: "POST", path: "/orders", body: `{"quantity":"2"}`, status: 400, code: "InvalidParameter"},
		{name: "not json", method: "POST", path: "/orders", body: `{"quantity":`, status: 400, code: "InvalidParameter"},
		{name: "two objects", method: "POST", path: "/orders", body: `{} {}`, status: 400, code: "InvalidParameter"},
		{name: "empty", method: "POST", path: "/orders", body: ``, status: 400, code: "InvalidParameter"},
		{name: "too large by length", method: "POST", path: "/orders", body: big, status: 413, code: "PayloadTooLarge"},
		{name: "too large chunked", method: "POST", path: "/orders", body: big, status: 413, code: "PayloadTooLarge", chunked: true},
		{name: "panic", method: "GET", path: "/panic", status: 500, code: "Internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(tc.body)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, b, tc.status)
			}
			rid := resp.Header.Get("X-Request-Id")
			if rid == "" {
				t.Error("no X-Request-Id")
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
				t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), tc.allow)
			}
			if tc.code != "" {
				b := decodeError(t, resp.Body)
				if b.Error.Code != tc.code || b.Error.RequestID != rid || b.Error.Message == "" {
					t.Errorf("error = %+v, want code %s and request id %s", b.Error, tc.code, rid)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), `"msg":"handler panicked"`) || !strings.Contains(logs.String(), `"msg":"http request"`) {
		t.Errorf("missing access or panic log lines:\n%s", logs.String())
	}
}

func TestRequestIDPrecedence(t *testing.T) {
	srv, logs := newServer(t)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		// FC's id is the FC runtime's to trust (package fc), never a caller's.
		{"fc header is not ours to trust", map[string]string{"x-fc-request-id": "fc-1", "X-Request-Id": "caller-1"}, "caller-1"},
		{"caller", map[string]string{"X-Request-Id": "caller-2"}, "caller-2"},
		{"bad caller id", map[string]string{"X-Request-Id": "bad id\twith spaces"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/items/1", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&got)
			rid := resp.Header.Get("X-Request-Id")
			if got["requestId"] != rid {
				t.Errorf("handler saw %q, header says %q", got["requestId"], rid)
			}
			if tc.want != "" && rid != tc.want {
				t.Errorf("request id = %q, want %q", rid, tc.want)
			}
			if tc.want == "" && (rid == "" || strings.Contains(rid, " ")) {
				t.Errorf("request id = %q, want a generated one", rid)
			}
			if !strings.Contains(logs.String(), `"requestId":"`+rid+`"`) {
				t.Errorf("access log lacks requestId %s", rid)
			}
		})
	}
}

func TestTrace(t *testing.T) {
	srv, logs := newServer(t)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	get := func(traceHeader string) traceparent.Context {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/items/1", nil)
		if traceHeader != "" {
			req.Header.Set("traceparent", traceHeader)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&got)
		tc, err := traceparent.Parse(got["traceparent"])
		if err != nil {
			t.Fatalf("the handler saw no trace (%q): %v", got["traceparent"], err)
		}
		return tc
	}
	child := get(parent)
	if child.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || child.SpanIDString() == "00f067aa0ba902b7" {
		t.Errorf("with a caller's traceparent: %v, want a child span of its trace", child)
	}
	if !strings.Contains(logs.String(), `"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"`+child.SpanIDString()+`"`) {
		t.Errorf("the access log lacks the trace and span ids:\n%s", logs.String())
	}
	for _, h := range []string{"", "00-zz-bad", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if fresh := get(h); fresh.TraceID == child.TraceID {
			t.Errorf("traceparent %q: the request joined another trace, want a new one", h)
		}
	}
}

// At the default level a success costs no log line; a refusal and a
// failure each get one, at info and error.
func TestAccessLogLevels(t *testing.T) {
	for _, tc := range []struct {
		status int
		level  string // "" for no line
	}{{200, ""}, {302, ""}, {404, "INFO"}, {429, "INFO"}, {500, "ERROR"}, {503, "ERROR"}} {
		logs := &testutil.SyncBuffer{}
		h := httpjson.AccessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }),
			logging.New(logs, logging.Options{Level: slog.LevelInfo}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
		switch out := logs.String(); {
		case tc.level == "" && out != "":
			t.Errorf("%d: %s", tc.status, out)
		case tc.level != "" && !strings.Contains(out, `"level":"`+tc.level+`","msg":"http request"`):
			t.Errorf("%d: %q, want one %s line", tc.status, out, tc.level)
		}
	}
}

func TestNamed(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	logger := logging.New(logs, logging.Options{})
	h := httpjson.Named("remain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside")
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(logs.String(), `"function":"remain"`) {
		t.Errorf("log line lacks the function: %s", logs.String())
	}
}

func TestMuxPatterns(t *testing.T) {
	m := httpjson.NewMux()
	m.HandleFunc("GET /a", func(http.ResponseWriter, *http.Request) {})
	m.Handle("POST /b", http.NotFoundHandler())
	if got := m.Patterns(); len(got) != 2 || got[0] != "GET /a" || got[1] != "POST /b" {
		t.Fatalf("Patterns = %v", got)
	}
}
