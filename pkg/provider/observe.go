package provider

import (
	"context"
	"errors"
	"time"
)

// Call is one request a client sent to its cloud, as metrics count it:
// every attempt of a retried query is a Call of its own.
type Call struct {
	Provider string // "aliyun", "volcengine"
	Action   string // the cloud's action, e.g. "BuySecretNo"
	// Code is "OK", the cloud's code (e.g. "isv.NO_AVAILABLE_NUMBER"), or,
	// when no code came back (no answer, a page from a proxy), the Kind of
	// the outcome (e.g. "Unavailable", "InDoubt").
	Code string
	// Took is from sending the request to its answer or its end.
	Took time.Duration
}

// CallObserver is told of every request a client sends, on the caller's
// goroutine, and must return at once.
type CallObserver func(ctx context.Context, c Call)

// CallCode is the Call.Code of a call that ended with err.
func CallCode(err error) string {
	if err == nil {
		return "OK"
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return string(KindOf(err))
}
