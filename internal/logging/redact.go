package logging

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
)

// Redacted replaces a secret in a log line.
const Redacted = "[redacted]"

// secretWords are the parts of an attribute or header name that mark its
// value as a secret: x-fc-access-key-secret, x-fc-security-token,
// Authorization, AccessKeySecret, password, signatures and cookies.
var secretWords = []string{"secret", "token", "password", "passwd", "signature", "authorization", "cookie"}

// SecretKey reports whether an attribute or header named key holds a secret.
func SecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Redact is a slog.HandlerOptions.ReplaceAttr that hides secrets: the value
// of an attribute whose key (or enclosing group) looks secret, the secret
// headers of an http.Header, and key=value pairs such as Signature=… or
// SecurityToken=… inside strings and errors (a transport error's URL carries
// the signed query of an RPC call).
func Redact(groups []string, a slog.Attr) slog.Attr {
	if SecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	for _, g := range groups {
		if SecretKey(g) {
			return slog.String(a.Key, Redacted)
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); needsScrub(s) {
			return slog.String(a.Key, Scrub(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(v.Error()))
		case http.Header:
			return slog.Any(a.Key, redactHeader(v))
		case map[string][]string:
			return slog.Any(a.Key, redactHeader(v))
		case map[string]string:
			out := make(map[string]string, len(v))
			for k, s := range v {
				if SecretKey(k) {
					s = Redacted
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
		if SecretKey(k) {
			out[k] = []string{Redacted}
			continue
		}
		out[k] = vs
	}
	return out
}

var (
	// name=value, as in a query string or an Authorization header.
	plainPair = regexp.MustCompile(`(?i)([A-Za-z0-9_.-]*(?:signature|token|secret|password)[A-Za-z0-9_.-]*=)[^&\s"',;]+`)
	// name%3Dvalue, as in Dyplsapi's string-to-sign echoed in an error.
	encodedPair = regexp.MustCompile(`(?i)([A-Za-z0-9_.-]*(?:signature|token|secret|password)[A-Za-z0-9_.-]*%3D)[^%\s"',;&]+`)
)

func needsScrub(s string) bool {
	return strings.ContainsRune(s, '=') || strings.Contains(s, "%3D") || strings.Contains(s, "%3d")
}

// Scrub replaces the values of secret-looking name=value pairs in s.
func Scrub(s string) string {
	if !needsScrub(s) {
		return s
	}
	s = plainPair.ReplaceAllString(s, "${1}"+Redacted)
	return encodedPair.ReplaceAllString(s, "${1}"+Redacted)
}
