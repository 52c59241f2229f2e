package lambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/lambda"
	"github.com/xnum-dev/xnum/internal/trigger/lambda/lambdatest"
	"github.com/xnum-dev/xnum/pkg/provider"
)

type order struct {
	OrderID  string `json:"orderId"`
	PoolKey  string `json:"poolKey"`
	City     string `json:"city"`
	SpecID   int    `json:"specId"`
	Quantity int    `json:"quantity"`
}

// fixture is a function whose handlers record what they saw.
type fixture struct {
	mu   sync.Mutex
	msgs []trigger.Message
	ids  []string
	fail map[string]bool // order ids whose message fails
}

func (f *fixture) function() trigger.Function {
	mux := httpjson.NewMux()
	mux.HandleFunc("GET /remain", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{
			"city":      r.URL.Query().Get("city"),
			"specId":    r.URL.Query().Get("specId"),
			"requestId": logging.RequestID(r.Context()),
		})
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
		w.Header().Add("X-Multi", "x")
		w.Header().Add("X-Multi", "y")
		httpjson.Write(w, http.StatusOK, map[string]any{
			"cookie":  r.Header.Get("Cookie"),
			"header1": r.Header.Get("Header1"),
			"query":   r.URL.Query()["parameter1"],
		})
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var o order
		if err := httpjson.Decode(r, &o); err != nil {
			httpjson.WriteError(w, r, err)
			return
		}
		w.Header().Set("Location", "/orders/"+o.OrderID)
		httpjson.Write(w, http.StatusAccepted, map[string]string{"orderId": o.OrderID, "status": "accepted", "trace": r.Header.Get("X-Trace")})
	})
	return trigger.Function{
		Name: "test",
		HTTP: mux,
		Events: trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ids = append(f.ids, logging.RequestID(ctx))
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				f.msgs = append(f.msgs, m)
				var o order
				if err := json.Unmarshal(m.Body, &o); err != nil {
					errs[i] = provider.Invalid("body", "not an order")
					continue
				}
				if o.OrderID == "ord-panic" {
					panic("kaput")
				}
				if f.fail[o.OrderID] {
					errs[i] = &provider.Error{Kind: provider.ErrUnavailable, Message: "ledger unavailable"}
				}
			}
			return errs
		}),
	}
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRuntimeLoop drives aws-lambda-go's own invoke loop (lambda.Start)
// against an emulated Runtime API with the library's sample events.
func TestRuntimeLoop(t *testing.T) {
	api := lambdatest.NewRuntimeAPI()
	t.Setenv(lambda.RuntimeAPIEnv, api.Addr())
	fx := &fixture{fail: map[string]bool{"ord-sqs-2": true}}
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		aroundMu sync.Mutex
		arounds  []string
	)
	around := lambda.WithAround(func(ctx context.Context) (context.Context, func()) {
		return ctx, func() {
			aroundMu.Lock()
			defer aroundMu.Unlock()
			arounds = append(arounds, logging.RequestID(ctx))
		}
	})
	go func() {
		_ = lambda.Start(ctx, fx.function(), logging.New(logs, logging.Options{Function: "test", Level: slog.LevelDebug}), around)
	}()

	t.Run("http api v2", func(t *testing.T) {
		res := api.Invoke(t, testdata(t, "apigw-v2-request-no-authorizer.json"))
		var resp events.APIGatewayV2HTTPResponse
		if res.Kind != "response" || json.Unmarshal(res.Body, &resp) != nil {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		var body map[string]string
		if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &body) != nil {
			t.Fatalf("response %+v", resp)
		}
		if body["city"] != "杭州" || body["specId"] != "1" || body["requestId"] != "lambda-req-1" {
			t.Errorf("handler saw %v", body)
		}
		if resp.Headers["X-Request-Id"] != "lambda-req-1" || !strings.HasPrefix(resp.Headers["Content-Type"], "application/json") {
			t.Errorf("headers %v", resp.Headers)
		}
	})

	t.Run("http api v2 cookies and multi-value", func(t *testing.T) {
		res := api.Invoke(t, testdata(t, "apigw-v2-request-iam.json"))
		var resp events.APIGatewayV2HTTPResponse
		if json.Unmarshal(res.Body, &resp) != nil || resp.StatusCode != 200 {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		var body struct {
			Cookie, Header1 string
			Query           []string
		}
		_ = json.Unmarshal([]byte(resp.Body), &body)
		if body.Cookie != "cookie1; cookie2" || body.Header1 != "value1" || strings.Join(body.Query, ",") != "value1,value2" {
			t.Errorf("handler saw %+v", body)
		}
		if strings.Join(resp.Cookies, ";") != "a=1;b=2" || resp.Headers["X-Multi"] != "x, y" {
			t.Errorf("cookies %v headers %v", resp.Cookies, resp.Headers)
		}
	})

	for _, tc := range []struct{ file, order string }{
		{"lambda-urls-request.json", "ord-url-1"},
		{"lambda-urls-request-base64.json", "ord-url-2"},
	} {
		t.Run("function url "+tc.file, func(t *testing.T) {
			res := api.Invoke(t, testdata(t, tc.file))
			var resp events.LambdaFunctionURLResponse
			if json.Unmarshal(res.Body, &resp) != nil || resp.StatusCode != 202 {
				t.Fatalf("result %s %s", res.Kind, res.Body)
			}
			if resp.Headers["Location"] != "/orders/"+tc.order || !strings.Contains(resp.Body, tc.order) {
				t.Errorf("response %+v", resp)
			}
		})
	}

	t.Run("rest api multi-value headers", func(t *testing.T) {
		res := api.Invoke(t, testdata(t, "apigw-request.json"))
		var resp events.APIGatewayProxyResponse
		if json.Unmarshal(res.Body, &resp) != nil || resp.StatusCode != 202 {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		if !strings.Contains(resp.Body, "ord-rest-1") || !strings.Contains(resp.Body, `"trace":"a"`) || resp.MultiValueHeaders["X-Request-Id"] == nil {
			t.Errorf("response %+v", resp)
		}
	})

	t.Run("sqs partial batch failure", func(t *testing.T) {
		res := api.Invoke(t, testdata(t, "sqs-event.json"))
		var resp events.SQSEventResponse
		if res.Kind != "response" || json.Unmarshal(res.Body, &resp) != nil {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "MessageID_2" {
			t.Errorf("batch item failures %+v", resp.BatchItemFailures)
		}
		fx.mu.Lock()
		defer fx.mu.Unlock()
		if len(fx.msgs) != 3 || fx.msgs[0].Source != trigger.SourceSQS || fx.msgs[0].ID != "MessageID_1" ||
			fx.msgs[0].Attributes["ApproximateReceiveCount"] != "2" || fx.msgs[0].Attributes["attr.Attribute1"] != "AttributeValue1" {
			t.Errorf("handler saw %+v", fx.msgs)
		}
	})

	t.Run("direct invoke", func(t *testing.T) {
		res := api.Invoke(t, []byte(`{"orderId":"ord-direct-1","poolKey":"FC1","city":"杭州","specId":1,"quantity":1}`))
		if res.Kind != "response" || !strings.Contains(string(res.Body), `"messages":1`) {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		res = api.Invoke(t, []byte(`"not an order"`))
		var e struct{ ErrorType, ErrorMessage string }
		if res.Kind != "error" || json.Unmarshal(res.Body, &e) != nil || e.ErrorType != "InvalidParameter" || !strings.Contains(e.ErrorMessage, "not an order") {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
	})

	t.Run("panic is the invocation's error, the loop goes on", func(t *testing.T) {
		res := api.Invoke(t, []byte(`{"orderId":"ord-panic"}`))
		if res.Kind != "error" || !strings.Contains(string(res.Body), "Internal") {
			t.Fatalf("result %s %s", res.Kind, res.Body)
		}
		res = api.Invoke(t, testdata(t, "apigw-v2-request-no-authorizer.json"))
		if res.Kind != "response" {
			t.Fatalf("after a panic: %s %s", res.Kind, res.Body)
		}
	})

	if !strings.Contains(logs.String(), `"requestId":"lambda-req-1"`) {
		t.Errorf("logs lack the Lambda request id:\n%s", logs.String())
	}
	aroundMu.Lock()
	if len(arounds) < 8 || arounds[0] != "lambda-req-1" || arounds[len(arounds)-1] != fmt.Sprintf("lambda-req-%d", len(arounds)) {
		t.Errorf("Around ran for %q, want every invocation in turn", arounds)
	}
	aroundMu.Unlock()
	// Lambda sends SIGTERM before it shuts an instance down only to a
	// function with an extension registered.
	if ext := api.Extensions(); !slices.Contains(ext, "GoLangEnableSIGTERM") {
		t.Errorf("extensions registered: %q; want the SIGTERM extension", ext)
	}
}

func invokeCtx(id string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
}

func TestInvokeErrors(t *testing.T) {
	const secret = "Bearer SecretBearerToken"
	logs := &testutil.SyncBuffer{}
	fx := &fixture{fail: map[string]bool{"ord-sqs-1": true, "ord-sqs-2": true, "ord-sqs-3": true}}
	h, err := lambda.NewHandler(fx.function(), logging.New(logs, logging.Options{}))
	if err != nil {
		t.Fatal(err)
	}

	// An unknown route answers the shared 404 body with Lambda's request id.
	ev := events.APIGatewayV2HTTPRequest{RawPath: "/nope", Headers: map[string]string{"authorization": secret}}
	ev.RequestContext.HTTP.Method = "GET"
	payload, _ := json.Marshal(ev)
	out, err := h.Invoke(invokeCtx("req-404"), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	_ = json.Unmarshal(out, &resp)
	var eb httpjson.ErrorBody
	if resp.StatusCode != 404 || json.Unmarshal([]byte(resp.Body), &eb) != nil || eb.Error.Code != "NotFound" || eb.Error.RequestID != "req-404" {
		t.Errorf("unknown route: %+v", resp)
	}

	// A body over the limit is refused before the handler.
	ev = events.APIGatewayV2HTTPRequest{RawPath: "/orders", Body: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), httpjson.MaxBodyBytes+1)), IsBase64Encoded: true}
	ev.RequestContext.HTTP.Method = "POST"
	payload, _ = json.Marshal(ev)
	out, _ = h.Invoke(invokeCtx("req-413"), payload)
	_ = json.Unmarshal(out, &resp)
	if resp.StatusCode != 413 {
		t.Errorf("oversized body: %d %s", resp.StatusCode, resp.Body)
	}

	// A batch whose every message failed is an invocation error, so SQS
	// retries it even without ReportBatchItemFailures.
	if _, err := h.Invoke(invokeCtx("req-sqs"), testdata(t, "sqs-event.json")); err == nil || !strings.Contains(err.Error(), "Unavailable") {
		t.Errorf("all-failed batch: %v", err)
	}

	// A function without an event handler refuses events.
	noEvents := fx.function()
	noEvents.Events = nil
	h2, _ := lambda.NewHandler(noEvents, logging.New(logs, logging.Options{}))
	if _, err := h2.Invoke(invokeCtx("req-direct"), []byte(`{"a":1}`)); err == nil || !strings.Contains(err.Error(), "InvalidParameter") {
		t.Errorf("no event handler: %v", err)
	}
	if strings.Contains(logs.String(), "SecretBearerToken") {
		t.Errorf("a secret reached the logs:\n%s", logs.String())
	}
}
