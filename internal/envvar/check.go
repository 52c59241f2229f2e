package envvar

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The checks below are those both clouds' client configurations make,
// whether a value came from a variable or from Go. Each returns why v is
// wrong, or "" when it is fine; the caller names the field or variable.

// Field is one checked field of a configuration: its name, and why its
// value is wrong ("" when it is fine).
type Field struct{ Name, Why string }

// First returns the first of fields that is wrong, or two empty strings.
func First(fields ...Field) (name, why string) {
	for _, f := range fields {
		if f.Why != "" {
			return f.Name, f.Why
		}
	}
	return "", ""
}

// Limits of key material: an AccessKey id is short, a secret a few dozen
// characters, an STS token a few kilobytes.
const (
	maxKeyIDLen  = 128
	MaxSecretLen = 1024
	MaxTokenLen  = 16 << 10
)

// KeyID checks an AccessKey id: printable ASCII without blanks, nor the
// delimiters of a query string (it is sent in one, unescaped by some SDKs).
// An empty id passes: whether one is required is the caller's rule.
func KeyID(v string) string {
	if v != "" && (len(v) > maxKeyIDLen || !printable(v) || strings.ContainsAny(v, "&=?#")) {
		return fmt.Sprintf("must be at most %d printable characters without spaces or &=?#", maxKeyIDLen)
	}
	return ""
}

// Secret checks a secret or a token of at most max characters without ever
// quoting it: printable ASCII without blanks (a pasted newline signs every
// request wrong).
func Secret(v string, max int) string {
	switch {
	case len(v) > max:
		return fmt.Sprintf("is longer than %d characters (its value is not shown)", max)
	case !printable(v):
		return "contains spaces or control characters (its value is not shown)"
	}
	return ""
}

// Region checks a region id: 1 to 64 of a-z, 0-9 and '-', such as example
// (cn-hangzhou).
func Region(v, example string) string {
	ok := len(v) > 0 && len(v) <= 64
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return "must be a region id such as " + example + ", not " + strconv.Quote(v)
	}
	return ""
}

// Endpoint checks an API endpoint: an http or https URL of a scheme and a
// host (and port), nothing else. The value is not quoted: it might carry
// credentials.
func Endpoint(v string) string {
	_, _, why := SchemeHost(v)
	return why
}

// SchemeHost is Endpoint that also returns the scheme and the host.
func SchemeHost(v string) (scheme, host, reason string) {
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return "", "", "must be an http:// or https:// URL with a host, such as http://127.0.0.1:9100"
	case u.User != nil:
		return "", "", "must not carry credentials"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", "", "must be only a scheme and a host, without a path or query"
	}
	return u.Scheme, u.Host, ""
}

// Between checks a duration: 0 (the default) up to max.
func Between(d, max time.Duration) string {
	if d < 0 || d > max {
		return fmt.Sprintf("must be a duration from 0 (the default) to %v, not %v", max, d)
	}
	return ""
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
