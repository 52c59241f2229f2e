// Package httpjson is the HTTP contract every xnum function shares: JSON
// bodies, one error shape {"error":{"code","message","requestId"}} with the
// status of pkg/provider's taxonomy, 404/405 in that shape, a body limit, a
// request id on every request and one access log line per request.
package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// MaxBodyBytes is the largest request body the functions read.
const MaxBodyBytes = 64 << 10

// Codes of failures of the HTTP layer itself, beside the taxonomy's kinds.
const (
	CodeMethodNotAllowed = "MethodNotAllowed"
	CodePayloadTooLarge  = "PayloadTooLarge"
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what failed: Code is a provider.Kind or one of the codes
// above, Message is safe to show to the caller, RequestID names the request
// in the logs.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

// StatusError is a failure with its own status and code outside the
// taxonomy, such as 413 PayloadTooLarge.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

func (e *StatusError) Error() string { return e.Code + ": " + e.Message }

// Describe turns err into the status and body every runtime answers with.
// The message is the *provider.Error's own message for validation and
// provider failures, and a fixed sentence for Internal (and Unauthorized,
// whose provider message may echo the signed request), so that internals and
// secrets never reach a caller.
func Describe(ctx context.Context, err error) (int, ErrorBody) {
	body := ErrorBody{Error: ErrorDetail{RequestID: logging.RequestID(ctx)}}
	var se *StatusError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		body.Error.Code, body.Error.Message = se.Code, provider.SafeMessage(se.Message)
		return se.Status, body
	case errors.As(err, &tooLarge):
		body.Error.Code = CodePayloadTooLarge
		body.Error.Message = fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)
		return http.StatusRequestEntityTooLarge, body
	}
	kind := provider.KindOf(err)
	body.Error.Code = string(kind)
	body.Error.Message = message(kind, err)
	return kind.HTTPStatus(), body
}

func message(kind provider.Kind, err error) string {
	var pe *provider.Error
	hasPE := errors.As(err, &pe)
	switch {
	case kind == provider.ErrInternal:
		return "internal error; the request id names it in the logs"
	case kind == provider.ErrUnauthorized:
		who := "the provider"
		if hasPE && pe.Provider != "" {
			who = pe.Provider
		}
		m := who + " refused the function's credentials"
		if hasPE && pe.Code != "" {
			m += " (" + provider.SafeMessage(pe.Code) + ")"
		}
		return m
	case hasPE && pe.Message != "":
		m := provider.SafeMessage(pe.Message)
		if pe.Provider != "" {
			m = pe.Provider + ": " + m
		}
		return m
	}
	return generic[kind]
}

var generic = map[provider.Kind]string{
	provider.ErrInvalidParameter:      "the request is invalid",
	provider.ErrNotFound:              "not found",
	provider.ErrConflict:              "the request conflicts with an earlier one",
	provider.ErrInsufficientInventory: "not enough numbers to buy",
	provider.ErrThrottled:             "too many requests; try again later",
	provider.ErrUnavailable:           "a dependency is unavailable; try again later",
	provider.ErrInDoubt:               "the outcome is unknown; it is being reconciled",
}

// Write writes v as a JSON body with status.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"Internal","message":"the answer could not be encoded","requestId":""}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes err in the shared error shape with its status.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := Describe(r.Context(), err)
	Write(w, status, body)
}

// Decode reads r's body, one JSON object, into v. Unknown fields and
// trailing data are refused: on a path that spends money a typo must not be
// silently ignored. Errors are InvalidParameter, or 413 for a body over the
// limit set by LimitBody.
func Decode(r *http.Request, v any) error {
	return DecodeJSON(r.Body, v)
}

// DecodeJSON is Decode for any reader, such as a NATS request's data.
func DecodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return provider.Invalid("body", "the body must be exactly one JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return provider.Invalid("body", "the body is empty; it must be a JSON object")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return provider.Invalid("body", "the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field != "" {
			return provider.Invalid(typ.Field, fmt.Sprintf("%s must be a JSON %s", typ.Field, jsonType(typ.Type.Kind().String())))
		}
		return provider.Invalid("body", "the body must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return provider.Invalid(field, fmt.Sprintf("unknown field %q", field))
	}
	return provider.Invalid("body", "the body could not be read as JSON")
}

func jsonType(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "string":
		return "string"
	case goKind == "bool":
		return "boolean"
	case goKind == "slice", goKind == "array":
		return "array"
	}
	return "object"
}
