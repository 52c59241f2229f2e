// Package trigger describes one xnum function the way every trigger serves
// it: its HTTP routes, its handler of event messages, and its NATS
// request-reply endpoints. The subpackages fc, lambda and natsrpc serve a
// Function on Alibaba FC3's custom runtime, AWS Lambda and NATS micro; serve
// picks among them from the environment.
package trigger

import (
	"context"
	"errors"
	"net/http"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Sources of a Message.
const (
	SourceDirect   = "direct"   // the raw payload of an invocation: a bare order, our CloudEvent, …
	SourceTimer    = "timer"    // an FC timer trigger; Body is the timer's payload string
	SourceMNS      = "mns"      // EventBridge from an MNS (SMQ) queue
	SourceRocketMQ = "rocketmq" // EventBridge from ApsaraMQ for RocketMQ
	SourceKafka    = "kafka"    // EventBridge from ApsaraMQ for Kafka
	SourceSQS      = "sqs"      // an AWS SQS record
)

// Message is one message of an event invocation, unwrapped from its
// trigger's envelope (EventBridge CloudEvent from MNS/RocketMQ/Kafka, SQS
// record, FC timer, or the raw payload).
type Message struct {
	ID         string            // the trigger's message id when it has one
	Source     string            // "direct", "timer", "mns", "rocketmq", "kafka", "sqs", ...
	Body       []byte            // the message itself (for timer: the timer's payload string)
	Attributes map[string]string // the envelope's metadata worth keeping (topic, trigger name, …)
}

// EventHandler handles the messages of one invocation; one error per message
// (nil = done), so batch triggers can report partial failures (Lambda SQS
// batchItemFailures). On FC any error makes the invocation a function error
// (404 + x-fc-status: 404) so FC retries it.
type EventHandler interface {
	HandleEvents(ctx context.Context, msgs []Message) []error
}

// EventHandlerFunc adapts a function to EventHandler.
type EventHandlerFunc func(ctx context.Context, msgs []Message) []error

// HandleEvents calls f.
func (f EventHandlerFunc) HandleEvents(ctx context.Context, msgs []Message) []error {
	return f(ctx, msgs)
}

// RequestFunc answers one NATS request: data is the request's JSON, the
// result is marshalled to JSON, an error is answered in the shared error
// shape (see httpjson.Describe).
type RequestFunc func(ctx context.Context, data []byte) (any, error)

// Endpoint is one request-reply endpoint of a Service.
type Endpoint struct {
	Name    string // the micro endpoint name, e.g. "remain"
	Subject string // e.g. "xnum.remain"
	Handle  RequestFunc
}

// Service is a NATS micro service: a name ([A-Za-z0-9_-]), a semantic
// version and its endpoints.
type Service struct {
	Name        string
	Version     string
	Description string
	Endpoints   []Endpoint
}

// Function is one xnum function as every trigger serves it. Name and at
// least one of HTTP, Events or Services are required.
type Function struct {
	Name string
	// HTTP serves the function's routes: FC HTTP triggers, API Gateway and
	// Lambda function URLs, local runs. The runtimes put it behind
	// httpjson.Wrap, so it gets a request id, an access log and a body limit.
	HTTP http.Handler
	// Events handles event invocations: FC /invoke (EventBridge, timer,
	// direct), Lambda SQS batches and plain invokes. Optional.
	Events EventHandler
	// Services are the NATS request-reply services, run when NATS is
	// configured. Optional.
	Services []Service
	// Initialize runs on FC's Initializer hook (POST /initialize, when the
	// function is deployed with an initializer) and once before Lambda's
	// invoke loop starts. Optional.
	Initialize func(ctx context.Context) error
	// PreStop runs on FC's PreStop hook (GET /pre-stop) and when the process
	// shuts down, e.g. to flush a queue connection. Optional.
	PreStop func(ctx context.Context) error
	// Background loops run beside the server until its context ends, such as
	// a long-lived queue consumer. Not run on Lambda, which freezes the
	// process between invocations. Optional.
	Background []func(ctx context.Context) error
	// Ready reports whether the function can do its work now (its queue
	// answers, say), for the readiness check of a long-lived process
	// (GET /readyz). Optional: without it a function that serves is ready.
	Ready func(ctx context.Context) error
}

// Around runs around each invocation of a function on a platform that
// freezes it between invocations (FC, Lambda): it returns the context the
// invocation runs with and a func to call when the invocation ends
// (internal/metrics writes the invocation's metrics line there).
type Around func(ctx context.Context) (context.Context, func())

// ErrNoEvents is in the chain (errors.Is) of the error an event invocation
// of a function without an event handler gets (see Function.NoEvents).
var ErrNoEvents = errors.New("the function takes no events")

// NoEvents is the error of an event invocation of f when f has no event
// handler: InvalidParameter, naming the function.
func (f Function) NoEvents() error {
	return &provider.Error{Kind: provider.ErrInvalidParameter, Err: ErrNoEvents,
		Message: "function " + f.Name + " takes no events; call its HTTP routes"}
}

// Validate reports a Function that no trigger could serve.
func (f Function) Validate() error {
	if f.Name == "" {
		return errors.New("trigger: the function has no name")
	}
	if f.HTTP == nil && f.Events == nil && len(f.Services) == 0 && len(f.Background) == 0 {
		return errors.New("trigger: function " + f.Name + " has nothing to serve")
	}
	for _, s := range f.Services {
		for _, e := range s.Endpoints {
			if e.Handle == nil || e.Subject == "" || e.Name == "" {
				return errors.New("trigger: service " + s.Name + " has an endpoint without a name, subject or handler")
			}
		}
	}
	return nil
}

// HandleEvents runs f's event handler on msgs and checks its answer: one
// error per message, f.NoEvents() for each when f has no handler. A handler
// that answers the wrong number of errors fails every message, since which
// were done is unknown.
func (f Function) HandleEvents(ctx context.Context, msgs []Message) []error {
	if len(msgs) == 0 {
		return nil
	}
	if f.Events == nil {
		return fill(len(msgs), f.NoEvents())
	}
	errs := f.Events.HandleEvents(ctx, msgs)
	if len(errs) != len(msgs) {
		return fill(len(msgs), errors.New("trigger: the event handler answered a different number of results than messages"))
	}
	return errs
}

func fill(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// FirstError returns the first non-nil error and how many are non-nil.
func FirstError(errs []error) (error, int) {
	var first error
	n := 0
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return first, n
}
