// Package natsrpc serves a function's request-reply endpoints as NATS micro
// services: a request's data is the same query as JSON that the HTTP route
// takes, the reply is the same JSON the route answers, and an error carries
// micro's error headers (Nats-Service-Error-Code is the HTTP status,
// Nats-Service-Error the message) with the shared JSON error body.
//
// micro hands an endpoint's requests to its handler one at a time; the
// endpoints share the queue group "xnum", so instances of a function share
// the load.
package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// HeaderRequestID carries the request id both ways.
const HeaderRequestID = "X-Request-Id"

// DefaultTimeout bounds one request's handling.
const DefaultTimeout = 30 * time.Second

// queueGroup is the queue group: instances of a function share
// requests.
const queueGroup = "xnum"

// Option configures Start and Serve.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	timeout time.Duration
	baseCtx context.Context
}

// WithLogger sets the JSON logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTimeout bounds each request (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), timeout: DefaultTimeout, baseCtx: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Start adds svc to nc as a micro service. Stop the returned service to
// remove it.
func Start(nc *nats.Conn, svc trigger.Service, opts ...Option) (micro.Service, error) {
	return start(nc, svc, newOptions(opts))
}

func start(nc *nats.Conn, svc trigger.Service, o options) (micro.Service, error) {
	version := svc.Version
	if version == "" {
		version = "1.0.0"
	}
	ms, err := micro.AddService(nc, micro.Config{
		Name:        svc.Name,
		Version:     version,
		Description: svc.Description,
		QueueGroup:  queueGroup,
	})
	if err != nil {
		return nil, fmt.Errorf("natsrpc: add service %s: %w", svc.Name, err)
	}
	for _, ep := range svc.Endpoints {
		if err := ms.AddEndpoint(ep.Name, handler(ep, o), micro.WithEndpointSubject(ep.Subject)); err != nil {
			_ = ms.Stop()
			return nil, fmt.Errorf("natsrpc: add endpoint %s (%s): %w", ep.Name, ep.Subject, err)
		}
	}
	return ms, nil
}

// Serve runs the services on nc until ctx ends, then stops them (draining
// their subscriptions).
func Serve(ctx context.Context, nc *nats.Conn, svcs []trigger.Service, opts ...Option) error {
	o := newOptions(opts)
	o.baseCtx = context.WithoutCancel(ctx)
	var started []micro.Service
	stop := func() error {
		var errs []error
		for _, s := range started {
			errs = append(errs, s.Stop())
		}
		return errors.Join(errs...)
	}
	for _, svc := range svcs {
		ms, err := start(nc, svc, o)
		if err != nil {
			return errors.Join(err, stop())
		}
		started = append(started, ms)
		for _, ep := range svc.Endpoints {
			o.logger.InfoContext(ctx, "serving NATS endpoint", "service", svc.Name, "subject", ep.Subject)
		}
	}
	<-ctx.Done()
	return stop()
}

func handler(ep trigger.Endpoint, o options) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		id := req.Headers().Get(HeaderRequestID)
		if !httpjson.ValidRequestID(id) {
			id = httpjson.NewRequestID()
		}
		ctx, cancel := context.WithTimeout(logging.WithRequestID(o.baseCtx, id), o.timeout)
		defer cancel()
		start := time.Now()
		headers := micro.WithHeaders(micro.Headers{HeaderRequestID: {id}})

		out, err := call(ctx, ep, req.Data())
		var data []byte
		if err == nil {
			data, err = json.Marshal(out)
		}
		status := 200
		if err != nil {
			var body httpjson.ErrorBody
			status, body = httpjson.Describe(ctx, err)
			data, _ = json.Marshal(body)
			if rerr := req.Error(strconv.Itoa(status), body.Error.Message, data, headers); rerr != nil {
				o.logger.ErrorContext(ctx, "NATS reply failed", "subject", ep.Subject, "err", rerr)
			}
			level := slog.LevelWarn
			if status >= 500 {
				level = slog.LevelError
			}
			o.logger.Log(ctx, level, "NATS request failed", "subject", ep.Subject, "status", status, "err", err)
		} else if rerr := req.Respond(data, headers); rerr != nil {
			o.logger.ErrorContext(ctx, "NATS reply failed", "subject", ep.Subject, "err", rerr)
		}
		o.logger.InfoContext(ctx, "nats request", "subject", ep.Subject, "status", status, "bytes", len(data),
			"durationMs", float64(time.Since(start).Microseconds())/1000)
	})
}

// call runs the endpoint, refusing oversized requests and turning a panic
// into an Internal error.
func call(ctx context.Context, ep trigger.Endpoint, data []byte) (out any, err error) {
	if len(data) > httpjson.MaxBodyBytes {
		return nil, &httpjson.StatusError{Status: 413, Code: httpjson.CodePayloadTooLarge,
			Message: fmt.Sprintf("the request is larger than %d bytes", httpjson.MaxBodyBytes)}
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("natsrpc: endpoint %s panicked: %v", ep.Name, v)
		}
	}()
	return ep.Handle(ctx, data)
}

// RemoteError is the error a request got back: the status and the shared
// error body.
type RemoteError struct {
	Status int
	Body   httpjson.ErrorBody
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%d %s: %s (request %s)", e.Status, e.Body.Error.Code, e.Body.Error.Message, e.Body.Error.RequestID)
}

// Request sends in as JSON to subject and decodes the reply into out; an
// error reply is a *RemoteError. It is the client side of Serve, for tools
// and tests.
func Request(ctx context.Context, nc *nats.Conn, subject string, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("natsrpc: encode request: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	if id := logging.RequestID(ctx); id != "" {
		msg.Header.Set(HeaderRequestID, id)
	}
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return fmt.Errorf("natsrpc: request %s: %w", subject, err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		re := &RemoteError{}
		re.Status, _ = strconv.Atoi(code)
		if json.Unmarshal(reply.Data, &re.Body) != nil || re.Body.Error.Code == "" {
			re.Body.Error.Message = reply.Header.Get(micro.ErrorHeader)
		}
		return re
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("natsrpc: decode reply of %s: %w", subject, err)
	}
	return nil
}
