package vms

import (
	"fmt"
	"net/http"
)

// codeInfo is what the cloud sends with an error code: the gateway's numeric
// CodeN (0 where none is published, and then omitted) and the HTTP status.
type codeInfo struct {
	codeN   int
	status  int
	message string // the cloud's fixed message; %s verbs are filled per call
}

// codes is the one table of the error codes this emulator answers with.
// Gateway codes carry the CodeN and status of Volcengine's published gateway
// table; VMS's business codes SystemError, IllegalArgument and DownStreamError
// come back with HTTP 200, as VMS documents them, so only
// ResponseMetadata.Error tells the client that the call failed.
var codes = map[string]codeInfo{
	"UndefinedError":             {100001, http.StatusInternalServerError, "Undefined Internal Error. Pls Contact With Admin."},
	"MissingParameter":           {100002, http.StatusBadRequest, "The request is missing %s parameter."},
	"MissingAuthenticationToken": {100003, http.StatusUnauthorized, "Request is missing Authentication Token"},
	"MissingRequestInfo":         {100004, http.StatusBadRequest, "The request is missing %s information."},
	"MissingSignature":           {100005, http.StatusUnauthorized, "The request is missing signature."},
	"InvalidTimestamp":           {100006, http.StatusForbidden, "The Signature of the request is expired"},
	"ServiceNotFound":            {100007, http.StatusNotFound, "This service[%s] not found."},
	"InvalidActionOrVersion":     {100008, http.StatusNotFound, "Could not find operation %s for version %s"},
	"InvalidAccessKey":           {100009, http.StatusUnauthorized, "The accesskey [%s] included in the request is invalid."},
	"SignatureDoesNotMatch":      {100010, http.StatusUnauthorized, "The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method. Consult the service documentation for details."},
	"AccessDenied":               {100013, http.StatusForbidden, "User is not authorized to perform: %s"},
	"InternalError":              {100014, http.StatusInternalServerError, "Service has some internal Error. Pls Contact With Admin"},
	"InternalServiceTimeout":     {100016, http.StatusGatewayTimeout, "Service timeout. Pls retry later"},
	"FlowLimitExceeded":          {100018, http.StatusTooManyRequests, "Request was denied due to request throttling."},
	"ServiceUnavailableTemp":     {100019, http.StatusServiceUnavailable, "Service is unavailable temporarily. Pls retry later"},
	"MethodNotAllowed":           {100020, http.StatusMethodNotAllowed, "Method %s is not allowed"},
	"AccountFlowLimitExceeded":   {0, http.StatusTooManyRequests, "Request was denied due to account flow limit."},
	"InvalidAuthorization":       {0, http.StatusBadRequest, "Invalid 'Authorization' header, Pls check authorization header."},
	"InvalidCredential":          {0, http.StatusBadRequest, "Invalid credential in 'Authorization', Pls check credential in authorization header."},
	"InvalidSecretToken":         {0, http.StatusUnauthorized, "Invalid secret token, msg: %s."},
	"InvalidParameter":           {0, http.StatusBadRequest, "The specified parameter %s is invalid."},
	"IllegalArgument":            {0, http.StatusOK, "illegal argument: %s"},
	"SystemError":                {0, http.StatusOK, "system error"},
	"DownStreamError":            {0, http.StatusOK, "downstream error"},
}

// Status is the HTTP status the emulator answers code with. Codes it does not
// know are answered with 400.
func Status(code string) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	return http.StatusBadRequest
}

// Codes lists every error code the emulator knows, for fault flags and tests.
func Codes() []string {
	out := make([]string, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// apiError is one error answer: a code of the table and its message.
type apiError struct {
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// newError fills the cloud's message of code with args.
func newError(code string, args ...any) *apiError {
	c, ok := codes[code]
	if !ok {
		return &apiError{code: code, message: code}
	}
	msg := c.message
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	return &apiError{code: code, message: msg}
}

// because adds the emulator's reason to the cloud's fixed message, so a test
// failure says which check refused the request. It never carries a secret,
// a token or a signature.
func (e *apiError) because(reason string) *apiError {
	e.message += " (" + reason + ")"
	return e
}
