package provider

import (
	"errors"
	"net/http"
	"strings"
)

// Kind is a class of failure in the taxonomy every runtime shares. A Kind is
// itself an error, so errors.Is(err, ErrThrottled) works on any error that
// carries it. Its string is the public code in error bodies.
type Kind string

// The taxonomy. Provider codes are mapped onto these once, in the provider's
// client package.
const (
	ErrInvalidParameter      Kind = "InvalidParameter"      // the caller's input is wrong; nothing happened
	ErrUnauthorized          Kind = "Unauthorized"          // the provider refused our credentials or permissions
	ErrNotFound              Kind = "NotFound"              // the thing asked for does not exist
	ErrConflict              Kind = "Conflict"              // a duplicate with another payload, or a state clash
	ErrInsufficientInventory Kind = "InsufficientInventory" // not enough numbers to buy
	ErrThrottled             Kind = "Throttled"             // rate limited; try again later
	ErrUnavailable           Kind = "Unavailable"           // the provider or a dependency failed; nothing happened
	ErrInDoubt               Kind = "InDoubt"               // a call that spends money may or may not have happened
	ErrInternal              Kind = "Internal"              // a bug or an unmapped failure
)

func (k Kind) Error() string { return string(k) }

// HTTPStatus is the one mapping of the taxonomy to HTTP.
//
// Unauthorized is 502, not 401: it means the provider refused the function's
// own credentials, which the caller can do nothing about.
func (k Kind) HTTPStatus() int {
	switch k {
	case ErrInvalidParameter:
		return http.StatusBadRequest
	case ErrNotFound:
		return http.StatusNotFound
	case ErrConflict, ErrInsufficientInventory:
		return http.StatusConflict
	case ErrThrottled:
		return http.StatusTooManyRequests
	case ErrUnauthorized:
		return http.StatusBadGateway
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	case ErrInDoubt:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// Retryable reports whether a call that failed with this kind may be sent
// again. InDoubt is not: the first call may have spent money.
func (k Kind) Retryable() bool {
	return k == ErrThrottled || k == ErrUnavailable
}

// Error is a failure with its place in the taxonomy and what the provider
// said about it. It never holds a secret.
type Error struct {
	Kind      Kind   // the class; errors.Is(err, e.Kind) holds
	Provider  string // "aliyun", "volcengine"; empty for our own validation
	Op        string // the provider action, e.g. "BuySecretNo"
	Code      string // the provider's code, e.g. "isv.NO_AVAILABLE_NUMBER"
	Message   string // the provider's message, or ours
	RequestID string // the provider's request id, when one came back
	Field     string // the offending parameter of an invalid request
	Status    int    // the provider's HTTP status, when one came back
	Err       error  // the underlying cause, e.g. a transport error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
		if e.Op != "" {
			b.WriteByte(' ')
			b.WriteString(e.Op)
		}
		b.WriteString(": ")
	}
	switch {
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(string(e.Kind))
	}
	if e.Code != "" {
		b.WriteString(" (")
		b.WriteString(e.Code)
		if e.RequestID != "" {
			b.WriteString(", request ")
			b.WriteString(e.RequestID)
		}
		b.WriteByte(')')
	}
	if e.Message != "" && e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// KindOf returns the taxonomy class of err: the kind of the first *Error or
// Kind in its chain, ErrInternal for any other non-nil error, "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Kind != "" {
		return e.Kind
	}
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return ErrInternal
}

// HTTPStatus is KindOf(err).HTTPStatus(), and 200 for nil.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return KindOf(err).HTTPStatus()
}

// Retryable reports whether the failed call may be sent again.
func Retryable(err error) bool { return KindOf(err).Retryable() }

// Invalid returns an invalid-parameter error naming the field.
func Invalid(field, message string) *Error {
	return &Error{Kind: ErrInvalidParameter, Field: field, Message: message}
}
