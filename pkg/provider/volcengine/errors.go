package volcengine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/volcengine/volcengine-go-sdk/volcengine/request"
	"github.com/volcengine/volcengine-go-sdk/volcengine/volcengineerr"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// kinds is the one mapping of Volcengine's codes (its gateway's and VMS's)
// to the taxonomy. A code with a suffix, such as InvalidParameter.Limit, is
// looked up by the part before the dot.
var kinds = map[string]provider.Kind{
	// The gateway refused our key, token, signature or clock, or the key
	// may not call VMS: nothing the caller can fix.
	"MissingAuthenticationToken": provider.ErrUnauthorized,
	"MissingSignature":           provider.ErrUnauthorized,
	"MissingRequestInfo":         provider.ErrUnauthorized,
	"InvalidAuthorization":       provider.ErrUnauthorized,
	"InvalidCredential":          provider.ErrUnauthorized,
	"InvalidAccessKey":           provider.ErrUnauthorized,
	"InvalidClientTokenId":       provider.ErrUnauthorized,
	"SignatureDoesNotMatch":      provider.ErrUnauthorized,
	"InvalidSecretToken":         provider.ErrUnauthorized,
	"InvalidTimestamp":           provider.ErrUnauthorized,
	"AccessDenied":               provider.ErrUnauthorized,
	"LackPolicy":                 provider.ErrUnauthorized,
	"LackProjectPolicy":          provider.ErrUnauthorized,
	"ServiceShouldCallSelfApi":   provider.ErrUnauthorized,

	// The parameters were refused.
	"MissingParameter": provider.ErrInvalidParameter,
	"InvalidParameter": provider.ErrInvalidParameter,
	"IllegalArgument":  provider.ErrInvalidParameter,

	"FlowLimitExceeded":        provider.ErrThrottled,
	"AccountFlowLimitExceeded": provider.ErrThrottled,

	// The gateway or VMS failed; the call did nothing and may be retried.
	"UndefinedError":         provider.ErrUnavailable,
	"InternalError":          provider.ErrUnavailable,
	"InternalServiceError":   provider.ErrUnavailable,
	"InternalServiceTimeout": provider.ErrUnavailable,
	"ServiceUnavailable":     provider.ErrUnavailable,
	"ServiceUnavailableTemp": provider.ErrUnavailable,
	"SystemError":            provider.ErrUnavailable,
	"DownStreamError":        provider.ErrUnavailable,

	// Our request named no operation the gateway has: a wrong endpoint or a
	// bug of ours, never a pool the caller asked for that is missing, so not
	// NotFound.
	"InvalidActionOrVersion": provider.ErrInternal,
	"ServiceNotFound":        provider.ErrInternal,
	"MethodNotAllowed":       provider.ErrInternal,
}

// The codes the SDK is told to retry (with backoff) or to treat as
// throttling (with a longer backoff), from kinds. The SDK already retries
// HTTP 429 and 5xx; these also cover the same codes sent with HTTP 200.
var retryCodes, throttleCodes = func() (retry, throttle []string) {
	for code, k := range kinds {
		switch k {
		case provider.ErrUnavailable:
			retry = append(retry, code)
		case provider.ErrThrottled:
			throttle = append(throttle, code)
		}
	}
	return retry, throttle
}()

// kindOf maps a code with the HTTP status it came with; codes not in the
// table are classed by their status, and otherwise are ErrInternal: an
// unmapped failure must not pass for the caller's mistake or be retried.
func kindOf(code string, status int) provider.Kind {
	if k, ok := kinds[code]; ok {
		return k
	}
	if base, _, ok := strings.Cut(code, "."); ok {
		if k, ok := kinds[base]; ok {
			return k
		}
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return provider.ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return provider.ErrThrottled
	case status >= 500:
		return provider.ErrUnavailable
	}
	return provider.ErrInternal
}

// codeUnknown is the SDK's code for a non-2xx answer whose error it could
// not read.
const codeUnknown = "UnknownError"

// noVMSError fills e for an answer with status that carried no VMS error.
func noVMSError(e *provider.Error, status int) {
	e.Status = status
	switch {
	case status == 0:
		e.Kind, e.Message = provider.ErrUnavailable, "no answer"
	case status < 300:
		e.Kind, e.Message = provider.ErrUnavailable, "malformed answer"
	default:
		e.Kind, e.Message = kindOf("", status), fmt.Sprintf("HTTP %d without a VMS error", status)
	}
}

// errNoResult is an answer without ResponseMetadata.Error and without a
// Result to read.
var errNoResult = errors.New("the answer has neither a Result nor an error")

// mapError turns what the SDK returned for the call req into a
// *provider.Error. ctx is the call's context.
func (c *Client) mapError(ctx context.Context, op string, err error, req *request.Request) *provider.Error {
	e := &provider.Error{Provider: Name, Op: op}
	status := 0
	if req != nil && req.HTTPResponse != nil {
		status = req.HTTPResponse.StatusCode
	}

	var rf volcengineerr.RequestFailure
	var ve volcengineerr.Error
	switch {
	case errors.As(err, &rf) && rf.Code() != codeNotVMS && rf.Code() != codeUnknown:
		// The cloud answered with ResponseMetadata.Error, with any status.
		e.Code = rf.Code()
		e.Message = c.scrub(rf.Message(), req)
		e.RequestID = rf.RequestID()
		e.Status = rf.StatusCode()
		e.Kind = kindOf(e.Code, e.Status)

	case ctx.Err() != nil:
		// The deadline or the caller ended the call, whatever the SDK
		// made of it (a cancelled retry wait is its own code); a read
		// that did not finish did nothing.
		e.Kind = provider.ErrUnavailable
		e.Message = "no answer before the call ended"
		e.Err = context.Cause(ctx)
		if req != nil {
			e.RequestID = req.Metadata.RequestId
		}

	case errors.As(err, &rf):
		// An answer that is not VMS's (a proxy's page, a redirect).
		noVMSError(e, rf.StatusCode())

	case errors.As(err, &ve) && ve.Code() == codeUnknown:
		// A non-2xx answer with JSON but no ResponseMetadata.
		noVMSError(e, status)

	case errors.Is(err, errNoResult):
		e.Kind = provider.ErrUnavailable
		e.Status = status
		e.Message = "malformed answer"
		e.Err = err
		if req != nil {
			e.RequestID = req.Metadata.RequestId
		}

	case errors.As(err, &ve):
		switch ve.Code() {
		case request.ErrCodeSerialization, "EmptyStaticCreds", "InvalidEndpointURL":
			// Our request could not be built: a bug, not the cloud.
			e.Kind = provider.ErrInternal
			e.Message = ve.Code() + ": " + c.scrub(ve.Message(), req)
		default:
			// RequestError, ReadError and the like: no usable answer.
			e.Kind = provider.ErrUnavailable
			e.Message = "no answer"
		}
		if orig := ve.OrigErr(); orig != nil {
			e.Err = orig
		}

	default:
		// An answer the SDK could not decode.
		e.Kind = provider.ErrUnavailable
		e.Status = status
		e.Message = "undecodable answer"
		e.Err = err
	}
	return e
}
