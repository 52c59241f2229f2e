package aliyun

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// codeKinds maps every documented Dyplsapi code, of both layers, to the
// taxonomy. Gateway codes (POP's public error list, answered with a non-2xx
// status) come first, then the product's business codes (document 109196,
// answered with HTTP 200). Codes not listed fall back by pattern and status
// (kindOf).
var codeKinds = map[string]provider.Kind{
	// Gateway: the caller's parameters.
	"MissingParameter": provider.ErrInvalidParameter,
	"InvalidParameter": provider.ErrInvalidParameter,

	// Gateway: our credentials, permissions or clock.
	"InvalidAccessKeyId.NotFound":                provider.ErrUnauthorized,
	"InvalidAccessKeyId.Inactive":                provider.ErrUnauthorized,
	"Forbidden.AccessKeyDisabled":                provider.ErrUnauthorized,
	"SignatureDoesNotMatch":                      provider.ErrUnauthorized,
	"IncompleteSignature":                        provider.ErrUnauthorized,
	"MissingSecurityToken":                       provider.ErrUnauthorized,
	"InvalidSecurityToken.Expired":               provider.ErrUnauthorized,
	"InvalidSecurityToken.Malformed":             provider.ErrUnauthorized,
	"InvalidSecurityToken.MismatchWithAccessKey": provider.ErrUnauthorized,
	"Forbidden.RAM":                              provider.ErrUnauthorized,
	"Forbidden":                                  provider.ErrUnauthorized,
	"InvalidTimeStamp.Expired":                   provider.ErrUnauthorized, // our clock is off by over 15 minutes

	// Gateway: a request this client should never build.
	"InvalidTimeStamp.Format": provider.ErrInternal,
	"InvalidSignatureMethod":  provider.ErrInternal,
	"InvalidApi.NotFound":     provider.ErrInternal,
	"InvalidParameter.Format": provider.ErrInternal,
	"InvalidParameter.Accept": provider.ErrInternal,
	"UnsupportedHTTPMethod":   provider.ErrInternal,
	"InvalidProtocol.NeedSsl": provider.ErrInternal,
	"InvalidRegion.NotFound":  provider.ErrInternal,
	"InvalidProduct.NotFound": provider.ErrInternal,

	// Gateway: refused before the service saw it; a fresh request may pass.
	"SignatureNonceUsed": provider.ErrUnavailable,
	"Throttling":         provider.ErrThrottled,
	"Throttling.User":    provider.ErrThrottled,
	"Throttling.Api":     provider.ErrThrottled,
	"FlowLimited":        provider.ErrThrottled,

	// Gateway: the cloud failed.
	"InternalError":               provider.ErrUnavailable,
	"InternalFailure":             provider.ErrUnavailable,
	"UnknownError":                provider.ErrUnavailable,
	"ServiceUnavailable":          provider.ErrUnavailable,
	"ServiceUnavailableTemporary": provider.ErrUnavailable,

	// Business: system, carrier or gateway trouble; nothing happened.
	"isp.SYSTEM_ERROR":       provider.ErrUnavailable,
	"isp.DAO_EXCEPTION":      provider.ErrUnavailable,
	"isp.UNKNOWN_ERR_CODE":   provider.ErrUnavailable,
	"isp.GATEWAY_ERROR":      provider.ErrUnavailable,
	"isp.VENDOR_UNAVAILABLE": provider.ErrUnavailable,
	"isv.PARTNER_NOT_EXIST":  provider.ErrUnavailable,
	"isv.VENDOR_BIND_FAILED": provider.ErrUnavailable,

	// Business: flow control.
	"isv.FLOW_LIMIT": provider.ErrThrottled,

	// Business: the caller's input.
	"isv.INVALID_PARAMETERS":    provider.ErrInvalidParameter,
	"isv.ILLEGAL_ARGUMENT":      provider.ErrInvalidParameter,
	"isv.MOBILE_NUMBER_ILLEGAL": provider.ErrInvalidParameter,
	"isv.EXPIRE_DATE_ILLEGAL":   provider.ErrInvalidParameter,

	// Business: stock and quota.
	"isv.NO_AVAILABLE_NUMBER": provider.ErrInsufficientInventory,
	"isv.BUY_NUM_OVER_LIMIT":  provider.ErrConflict,

	// Business: what the call names does not exist.
	"isv.POOLKEY_NOT_EXISTS": provider.ErrNotFound,
	"isv.NO_NOT_EXIST":       provider.ErrNotFound,
	"isv.SUBS_NOT_EXIST":     provider.ErrNotFound,

	// Business: state clashes.
	"isv.BIND_CONFLICT":     provider.ErrConflict,
	"isv.UPDATE_CONFLICT":   provider.ErrConflict,
	"isv.NO_USED_BY_OTHERS": provider.ErrConflict,

	// Business: the account, its permissions or its subscription.
	"isv.ACCOUNT_ABNORMAL":     provider.ErrUnauthorized,
	"isp.RAM_PERMISSION_DENY":  provider.ErrUnauthorized,
	"isv.OUT_OF_SERVICE":       provider.ErrUnauthorized,
	"isv.PRODUCT_UN_SUBSCRIPT": provider.ErrUnauthorized,
	"isv.PRODUCT_UNSUBSCRIBE":  provider.ErrUnauthorized,
	"isv.ACCOUNT_NOT_EXISTS":   provider.ErrUnauthorized,
	"isv.FORBIDDEN_ACTION":     provider.ErrUnauthorized,
	"isv.PARTNER_IS_CLOSED":    provider.ErrUnauthorized,
}

// refusals is the allowlist of answers that prove a call which spends
// money (BuySecretNo) or cannot be undone (ReleaseSecretNo) was refused
// before the service acted: each is a check the cloud documents as made
// before the work. Any other answer — a 5xx, an isp.* code, a code not
// listed here, a body that does not parse — may come after the work was
// done, so the call's outcome is unknown (provider.ErrInDoubt). Each entry
// says why it is safe, in the terms of ../shared/PROVIDERS.md.
var refusals = map[string]string{
	// The POP gateway answers these before it forwards a request to the
	// service: the request never reached Dyplsapi.
	"Throttling":                                 "gateway flow control",
	"Throttling.User":                            "gateway flow control",
	"Throttling.Api":                             "gateway flow control",
	"FlowLimited":                                "gateway flow control",
	"SignatureDoesNotMatch":                      "gateway signature check",
	"IncompleteSignature":                        "gateway signature check",
	"SignatureNonceUsed":                         "gateway replay check",
	"InvalidSignatureMethod":                     "gateway signature check",
	"InvalidTimeStamp.Expired":                   "gateway clock check",
	"InvalidTimeStamp.Format":                    "gateway clock check",
	"InvalidAccessKeyId.NotFound":                "gateway credential check",
	"InvalidAccessKeyId.Inactive":                "gateway credential check",
	"Forbidden.AccessKeyDisabled":                "gateway credential check",
	"MissingSecurityToken":                       "gateway credential check",
	"InvalidSecurityToken.Expired":               "gateway credential check",
	"InvalidSecurityToken.Malformed":             "gateway credential check",
	"InvalidSecurityToken.MismatchWithAccessKey": "gateway credential check",
	"Forbidden.RAM":                              "gateway RAM authorization",
	"Forbidden":                                  "gateway RAM authorization",
	"MissingParameter":                           "gateway parameter check",
	"InvalidParameter":                           "gateway parameter check",
	"InvalidParameter.Format":                    "gateway parameter check",
	"InvalidParameter.Accept":                    "gateway parameter check",
	"InvalidApi.NotFound":                        "gateway routing: no such action",
	"UnsupportedHTTPMethod":                      "gateway routing",
	"InvalidProtocol.NeedSsl":                    "gateway routing",
	"InvalidRegion.NotFound":                     "gateway routing",
	"InvalidProduct.NotFound":                    "gateway routing",

	// Dyplsapi's business refusals that are checks of the request, the
	// account or the stock, made before a number is taken (document 109196).
	"isv.FLOW_LIMIT":            "business flow control",
	"isp.RAM_PERMISSION_DENY":   "RAM permission check",
	"isv.INVALID_PARAMETERS":    "parameter check",
	"isv.ILLEGAL_ARGUMENT":      "parameter check",
	"isv.MOBILE_NUMBER_ILLEGAL": "parameter check",
	"isv.EXPIRE_DATE_ILLEGAL":   "parameter check",
	"isv.NO_AVAILABLE_NUMBER":   "stock check: no number for the city and prefix",
	"isv.POOLKEY_NOT_EXISTS":    "pool check: no such pool key",
	"isv.BUY_NUM_OVER_LIMIT":    "quota check",
	"isv.ACCOUNT_ABNORMAL":      "account check (arrears)",
	"isv.ACCOUNT_NOT_EXISTS":    "account check",
	"isv.OUT_OF_SERVICE":        "account check: service stopped",
	"isv.PRODUCT_UN_SUBSCRIPT":  "subscription check",
	"isv.PRODUCT_UNSUBSCRIBE":   "subscription check",
	"isv.FORBIDDEN_ACTION":      "permission check",
	"isv.PARTNER_IS_CLOSED":     "account check: partner closed",
}

// releaseRefusals are, for ReleaseSecretNo only, the checks of the
// number's state it makes before giving a number back.
var releaseRefusals = map[string]string{
	"isv.NO_NOT_EXIST":      "number check: not in the pool (never bought, or released already)",
	"isv.BIND_CONFLICT":     "binding check: a number with bindings is not released",
	"isv.NO_USED_BY_OTHERS": "binding check: the number is in use",
}

// refusedBeforeActing reports whether code is on the allowlist of refusals
// (the gateway's Missing{Param} family included: a missing parameter is
// checked before anything else).
func refusedBeforeActing(code string) bool {
	if _, ok := refusals[code]; ok {
		return true
	}
	return strings.HasPrefix(code, "Missing") && len(code) > len("Missing")
}

// kindOf maps a code the cloud answered with, and the HTTP status it came
// with, to the taxonomy: the table first, then the code's family, then the
// status.
func kindOf(code string, status int) provider.Kind {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	switch {
	case strings.HasPrefix(code, "Throttling"), strings.HasPrefix(code, "FlowLimit"):
		return provider.ErrThrottled
	case strings.HasPrefix(code, "InvalidAccessKeyId"), strings.HasPrefix(code, "InvalidSecurityToken"), strings.HasPrefix(code, "Forbidden"):
		return provider.ErrUnauthorized
	case strings.HasPrefix(code, "Missing"), strings.HasPrefix(code, "Invalid"):
		return provider.ErrInvalidParameter // Missing{Param}, Invalid{Param}
	case strings.HasPrefix(code, "isp."):
		return provider.ErrUnavailable // the platform's side
	case strings.HasPrefix(code, "isv."):
		return provider.ErrInvalidParameter // the caller's side
	}
	switch {
	case status == http.StatusTooManyRequests:
		return provider.ErrThrottled
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return provider.ErrUnauthorized
	case status >= 500:
		return provider.ErrUnavailable
	}
	return provider.ErrInternal
}

// scrubber removes a call's credentials (secret, token, key id, signature)
// from text that may quote its request: net/http errors carry the URL
// (Signature, SecurityToken in the query) and SignatureDoesNotMatch echoes
// the string to sign (AccessKeyId and SecurityToken in it).
type scrubber []string

const redactedText = "[redacted]"

// The patterns are compiled on first use, on an error path, not at start:
// compiling them is a quarter of a millisecond of every cold start.
var (
	// Signature=… and SecurityToken=… in a query string.
	rawParam = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^A-Za-z])(Signature|SecurityToken|AccessKeySecret)=[^&\s"']*`)
	})
	// The same inside an escaped string to sign: …%26SecurityToken%3D…%26.
	escapedParam = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(^|[^A-Za-z])(Signature|SecurityToken|AccessKeySecret)%3D(?:[^%&\s"']|%25[0-9A-Fa-f]{2})*`)
	})
)

func (s scrubber) text(t string) string {
	for _, v := range s {
		if v == "" {
			continue
		}
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), url.QueryEscape(url.QueryEscape(v))} {
			t = strings.ReplaceAll(t, form, redactedText)
		}
	}
	t = rawParam().ReplaceAllString(t, "${1}${2}="+redactedText)
	return escapedParam().ReplaceAllString(t, "${1}${2}%3D"+redactedText)
}

// message makes a message the cloud answered safe to keep in an error that
// reaches callers, the ledger and events: the call's credentials removed
// wherever they appear, then provider.SafeMessage (the quoted string to sign
// cut, other credentials by name, one bounded line).
func (s scrubber) message(m string) string {
	return provider.SafeMessage(s.text(m))
}

// err returns err with the call's secrets removed from its text. A
// *url.Error keeps its shape (Op, Timeout, the cause) with its URL cut to
// scheme, host and action: the query repeats the request's parameters and
// signature, and this text ends up in order errors that callers read.
func (s scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		inner := ue.Err
		if inner != nil {
			if t := inner.Error(); s.text(t) != t {
				inner = errors.New(s.text(t))
			}
		}
		return &url.Error{Op: ue.Op, URL: s.text(shortURL(ue.URL)), Err: inner}
	}
	if t := err.Error(); s.text(t) != t {
		return errors.New(s.text(t))
	}
	return err
}

// shortURL keeps a request URL's scheme, host and Action parameter.
func shortURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // s.text still scrubs it
	}
	short := u.Scheme + "://" + u.Host + u.Path
	if a := u.Query().Get("Action"); a != "" {
		short += "?Action=" + url.QueryEscape(a)
	}
	return short
}
