package logging

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// redacted replaces a secret in a log line.
const redacted = "[redacted]"

// secretWords are the parts of an attribute or header name that mark its
// value as a secret: x-fc-access-key-secret, x-fc-security-token,
// Authorization, AccessKeySecret, password, signatures and cookies.
var secretWords = []string{"secret", "token", "password", "passwd", "signature", "authorization", "cookie"}

// secretKey reports whether an attribute or header named key holds a secret.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// redact is a slog.HandlerOptions.ReplaceAttr that hides secrets: the value
// of an attribute whose key (or enclosing group) looks secret, the secret
// headers of an http.Header, and key=value pairs such as Signature=… or
// SecurityToken=… inside strings and errors (a transport error's URL carries
// the signed query of an RPC call).
func redact(groups []string, a slog.Attr) slog.Attr {
	if secretKey(a.Key) {
		return slog.String(a.Key, redacted)
	}
	for _, g := range groups {
		if secretKey(g) {
			return slog.String(a.Key, redacted)
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); needsScrub(s) {
			return slog.String(a.Key, scrub(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, scrub(v.Error()))
		case http.Header:
			return slog.Any(a.Key, redactHeader(v))
		case map[string][]string:
			return slog.Any(a.Key, redactHeader(v))
		case map[string]string:
			out := make(map[string]string, len(v))
			for k, s := range v {
				if secretKey(k) {
					s = redacted
				}
				out[k] = s
			}
			return slog.Any(a.Key, out)
		}
	}
	return a
}

func redactHeader(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if secretKey(k) {
			out[k] = []string{redacted}
			continue
		}
		out[k] = vs
	}
	return out
}

// secretNames matches a name whose value is a secret inside a string (an
// error's text, a quoted request or answer): any word containing one of
// these. Secrets are found by their names, never by guessing at values.
const secretNames = `[A-Za-z0-9_.-]*(?:signature|token|secret|password|passwd)[A-Za-z0-9_.-]*`

// scrubbers are compiled on first use, not at start: every function links
// this package, and compiling them is cold-start time spent before the first
// request for a path most processes never take.
var scrubbers = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		// scheme://user:password@host, as in a NATS or proxy URL.
		regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(@)`),
		// "name":"value" in JSON, also when the JSON is itself quoted
		// (\"name\":\"value\").
		regexp.MustCompile(`(?i)(\\?"` + secretNames + `\\?"\s*:\s*\\?")(?:[^"\\]|\\[^"])*`),
		// Name: value, a header as a proxy or a dump prints it; the value
		// runs to the end of the line, as header values may hold spaces.
		regexp.MustCompile(`(?i)((?:^|[\s\[{,])[A-Za-z0-9-]*(?:token|secret|signature|password|authorization|cookie)[A-Za-z0-9-]*:[ \t]*)[^\r\n]+`),
		// name=value, as in a query string or an Authorization header's
		// Signature=…; the value ends at a separator.
		regexp.MustCompile(`(?i)(` + secretNames + `=)[^&\s"',;]+`),
		// name%3Dvalue, as in Dyplsapi's string-to-sign echoed in an error,
		// and the same encoded again (name%253Dvalue): the value runs over
		// escapes of any depth until an escaped '&' (%26, %2526, …).
		regexp.MustCompile(`(?i)(` + secretNames + `%(?:25)*3D)(?:[^%\s"',;&]|%(?:25)*(?:[013-9A-F][0-9A-F]|2[0-47-9A-F]))+`),
	}
})

func needsScrub(s string) bool {
	return strings.ContainsAny(s, "=:%")
}

// scrub replaces the values of secrets named in s: name=value pairs (also
// URL-encoded once or twice), JSON "name":"value" pairs, "Name: value"
// header lines, and the password of a user:password@ URL.
func scrub(s string) string {
	if !needsScrub(s) {
		return s
	}
	// Each pattern keeps what precedes the secret as ${1} and what closes
	// it, when the match includes that, as ${2}.
	for _, re := range scrubbers() {
		s = re.ReplaceAllString(s, "${1}"+redacted+"${2}")
	}
	return s
}
