// Package lambda serves a trigger.Function on AWS Lambda through
// github.com/aws/aws-lambda-go: API Gateway HTTP API (payload 2.0), REST
// API proxy and function URL events reach the function's http.Handler; SQS
// batches reach its EventHandler and answer partial batch failures; any
// other payload is one direct message.
package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/httpevent"
)

// RuntimeAPIEnv is set by Lambda in every function's environment.
const RuntimeAPIEnv = "AWS_LAMBDA_RUNTIME_API"

// Handler is an aws-lambda-go lambda.Handler serving one function.
type Handler struct {
	fn     trigger.Function
	routes http.Handler
	logger *slog.Logger
	around trigger.Around
}

// Option configures a Handler.
type Option func(*Handler)

// WithAround runs a around each invocation (internal/metrics writes the
// invocation's EMF lines).
func WithAround(a trigger.Around) Option { return func(h *Handler) { h.around = a } }

// NewHandler returns the Lambda handler of fn, logging to logger.
func NewHandler(fn trigger.Function, logger *slog.Logger, opts ...Option) (*Handler, error) {
	if err := fn.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	routes := fn.HTTP
	if routes == nil {
		routes = httpjson.NewMux()
	}
	h := &Handler{fn: fn, routes: httpjson.Wrap(routes, logger), logger: logger}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// Start runs fn.Initialize, then the Lambda Runtime API loop for fn until
// ctx ends. The loop is aws-lambda-go's own: it reads AWS_LAMBDA_RUNTIME_API,
// and on a broken Runtime API it exits the process, as Lambda expects.
//
// It asks Lambda for a SIGTERM before an instance is shut down
// (lambda.WithEnableSIGTERM registers an extension, without which Lambda
// sends only SIGKILL): the process's signal handling then ends ctx, so the
// function's PreStop runs (drains NATS) within the ~500 ms Lambda allows.
func Start(ctx context.Context, fn trigger.Function, logger *slog.Logger, opts ...Option) error {
	h, err := NewHandler(fn, logger, opts...)
	if err != nil {
		return err
	}
	if fn.Initialize != nil {
		if err := fn.Initialize(ctx); err != nil {
			return fmt.Errorf("lambda: initialize %s: %w", fn.Name, err)
		}
	}
	sigterm := func() { h.logger.InfoContext(ctx, "SIGTERM: Lambda is shutting this instance down") }
	go awslambda.StartWithOptions(h, awslambda.WithContext(ctx), awslambda.WithEnableSIGTERM(sigterm))
	<-ctx.Done()
	return nil
}

// probe tells the event kinds apart without decoding them fully.
type probe struct {
	Version        string `json:"version"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext *struct {
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
}

// Invoke handles one invocation. The Lambda request id becomes the request
// id of the logs and error bodies.
func (h *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	id := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id = lc.AwsRequestID
	}
	if !httpjson.ValidRequestID(id) {
		id = httpjson.NewRequestID()
	}
	ctx = logging.WithRequestID(ctx, id)
	if h.around != nil {
		var done func()
		ctx, done = h.around(ctx)
		defer done()
	}
	// A panic in an event handler is this invocation's error; left to
	// aws-lambda-go it would end the process.
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, h.invokeError(ctx, fmt.Errorf("panic: %v", v))
		}
	}()

	var p probe
	_ = json.Unmarshal(payload, &p) // a payload that is not an object is a direct message
	switch {
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.RequestContext.HTTP.Method != "":
		return h.httpV2(ctx, payload)
	case p.HTTPMethod != "" && p.RequestContext != nil:
		return h.httpV1(ctx, payload)
	case isSQS(p):
		return h.sqs(ctx, payload)
	}
	return h.direct(ctx, payload)
}

func isSQS(p probe) bool {
	if len(p.Records) == 0 {
		return false
	}
	for _, r := range p.Records {
		if r.EventSource != "aws:sqs" {
			return false
		}
	}
	return true
}

// httpV2 serves an API Gateway HTTP API (payload 2.0) or function URL
// event; both share the request and response shapes.
func (h *Handler) httpV2(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, h.invokeError(ctx, fmt.Errorf("decode HTTP API event: %w", err))
	}
	header := http.Header{}
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	rec, err := h.serve(ctx, ev.RequestContext.HTTP.Method, path, ev.RawQueryString, header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.HTTP.SourceIP)
	if err != nil {
		return nil, h.invokeError(ctx, err)
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: rec.Code, Headers: map[string]string{}}
	for k, vs := range rec.Header() {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	resp.Body, resp.IsBase64Encoded = httpevent.Body(rec.Header(), rec.Body.Bytes())
	return json.Marshal(resp)
}

// httpV1 serves an API Gateway REST API proxy event, whose headers and
// query parameters may have several values each.
func (h *Handler) httpV1(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, h.invokeError(ctx, fmt.Errorf("decode REST API event: %w", err))
	}
	header := http.Header{}
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	for k, vs := range ev.MultiValueHeaders {
		header.Del(k)
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	q := url.Values{}
	for k, v := range ev.QueryStringParameters {
		q.Set(k, v)
	}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = vs
	}
	rec, err := h.serve(ctx, ev.HTTPMethod, ev.Path, q.Encode(), header, ev.Body, ev.IsBase64Encoded, ev.RequestContext.Identity.SourceIP)
	if err != nil {
		return nil, h.invokeError(ctx, err)
	}
	resp := events.APIGatewayProxyResponse{StatusCode: rec.Code, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}}
	for k, vs := range rec.Header() {
		resp.MultiValueHeaders[k] = vs
		resp.Headers[k] = vs[len(vs)-1]
	}
	resp.Body, resp.IsBase64Encoded = httpevent.Body(rec.Header(), rec.Body.Bytes())
	return json.Marshal(resp)
}

func (h *Handler) serve(ctx context.Context, method, path, rawQuery string, header http.Header, body string, isBase64 bool, sourceIP string) (*httptest.ResponseRecorder, error) {
	req, err := httpevent.NewRequest(ctx, httpevent.Request{Method: method, Path: path, RawQuery: rawQuery,
		Header: header, Body: body, IsBase64: isBase64, SourceIP: sourceIP})
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	h.routes.ServeHTTP(rec, req)
	return rec, nil
}

// sqs hands an SQS batch to the event handler and reports the messages that
// failed as batch item failures, so only those return to the queue (the
// event source mapping must have ReportBatchItemFailures). When every
// message failed it answers an error instead, which retries the batch even
// without that setting.
func (h *Handler) sqs(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, h.invokeError(ctx, fmt.Errorf("decode SQS event: %w", err))
	}
	msgs := make([]trigger.Message, len(ev.Records))
	for i, r := range ev.Records {
		attrs := map[string]string{"eventSourceARN": r.EventSourceARN, "awsRegion": r.AWSRegion}
		for k, v := range r.Attributes {
			attrs[k] = v
		}
		for k, v := range r.MessageAttributes {
			if v.StringValue != nil {
				attrs["attr."+k] = *v.StringValue
			}
		}
		msgs[i] = trigger.Message{ID: r.MessageId, Source: trigger.SourceSQS, Body: []byte(r.Body), Attributes: attrs}
	}
	errs := h.fn.HandleEvents(ctx, msgs)
	first, n := trigger.FirstError(errs)
	h.logger.InfoContext(ctx, "sqs batch", "messages", len(msgs), "failed", n)
	if n > 0 && n == len(msgs) {
		return nil, h.invokeError(ctx, first)
	}
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, err := range errs {
		if err != nil {
			h.logger.WarnContext(ctx, "sqs message failed", "messageId", msgs[i].ID, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msgs[i].ID})
		}
	}
	return json.Marshal(resp)
}

// direct hands a plain invoke's payload to the event handler as one message.
func (h *Handler) direct(ctx context.Context, payload []byte) ([]byte, error) {
	msgs := []trigger.Message{{Source: trigger.SourceDirect, Body: payload}}
	if err, _ := trigger.FirstError(h.fn.HandleEvents(ctx, msgs)); err != nil {
		return nil, h.invokeError(ctx, err)
	}
	return json.Marshal(struct {
		Messages int `json:"messages"`
	}{1})
}

// invokeError logs err and returns what Lambda reports to the invoker: the
// taxonomy code as errorType and the same safe message HTTP callers get.
func (h *Handler) invokeError(ctx context.Context, err error) error {
	h.logger.ErrorContext(ctx, "invocation failed", "err", err)
	_, body := httpjson.Describe(ctx, err)
	return messages.InvokeResponse_Error{Type: body.Error.Code, Message: body.Error.Message + " (request " + body.Error.RequestID + ")"}
}

var _ awslambda.Handler = (*Handler)(nil)
