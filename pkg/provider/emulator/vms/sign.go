package vms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The HMAC-SHA256 signature of Volcengine's OpenAPI gateway, as
// github.com/volcengine/volc-sdk-golang/base (Sign4) computes it.
const (
	algorithm  = "HMAC-SHA256"
	dateLayout = "20060102T150405Z"
	// maxSkew is how far X-Date may be from the gateway's clock either way.
	maxSkew = 900 * time.Second
)

// key is one access key the gateway knows. token is set for STS keys: the
// request must then carry it in X-Security-Token.
type key struct {
	secret string
	token  string
}

// verifier checks the signature of a request the way the gateway does. There
// is no nonce: the SDK's retries re-send the same signature, so a replay
// within the validity window is accepted.
type verifier struct {
	service string
	regions []string
	keys    map[string]key
	now     func() time.Time
}

// authorization is the parsed Authorization header.
type authorization struct {
	accessKeyID   string
	date          string // the scope's YYYYMMDD
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseAuthorization reads
// "HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (authorization, *apiError) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != algorithm {
		return a, newError("InvalidAuthorization").because("the algorithm must be " + algorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, newError("InvalidAuthorization").because("every part must be key=value")
		}
		if _, dup := fields[k]; dup {
			return a, newError("InvalidAuthorization").because(k + " is given twice")
		}
		fields[k] = v
	}
	cred, ok := fields["Credential"]
	if !ok || cred == "" {
		return a, newError("InvalidAuthorization").because("Credential is missing")
	}
	sh, ok := fields["SignedHeaders"]
	if !ok || sh == "" {
		return a, newError("InvalidAuthorization").because("SignedHeaders is missing")
	}
	if fields["Signature"] == "" {
		return a, newError("MissingSignature")
	}
	a.signature = fields["Signature"]
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] == "" || scope[4] != "request" {
		return a, newError("InvalidCredential").because("want AccessKeyID/YYYYMMDD/region/service/request")
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(sh, ";")
	seen := map[string]bool{}
	for _, name := range a.signedHeaders {
		if name == "" || name != strings.ToLower(name) || seen[name] {
			return a, newError("InvalidAuthorization").because("SignedHeaders must be distinct lower-case names")
		}
		seen[name] = true
	}
	return a, nil
}

// verify checks the signature of r, whose body has already been read. It
// returns the parsed Authorization (as far as it could be parsed, so that the
// answer can name the region) and the refusal, if any.
func (v *verifier) verify(r *http.Request, body []byte) (authorization, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return authorization{}, newError("MissingAuthenticationToken")
	}
	a, aerr := parseAuthorization(h)
	if aerr != nil {
		return a, aerr
	}

	xdate := r.Header.Get("X-Date")
	if xdate == "" {
		return a, newError("MissingRequestInfo", "X-Date")
	}
	t, err := time.Parse(dateLayout, xdate)
	if err != nil || len(xdate) != len(dateLayout) {
		return a, newError("InvalidTimestamp").because("X-Date must be " + dateLayout)
	}
	if skew := v.now().Sub(t); skew > maxSkew || skew < -maxSkew {
		return a, newError("InvalidTimestamp").because("X-Date is more than 900 s from the server's clock")
	}

	switch {
	case a.date != xdate[:8]:
		return a, newError("InvalidCredential").because("the credential scope's date is not X-Date's")
	case a.service != v.service:
		return a, newError("InvalidCredential").because("the credential scope's service is not " + v.service)
	case !slices.Contains(v.regions, a.region):
		return a, newError("InvalidCredential").because("the credential scope's region is not served here")
	}

	k, ok := v.keys[a.accessKeyID]
	if !ok {
		return a, newError("InvalidAccessKey", a.accessKeyID)
	}

	// The signature covers what the signer listed; the gateway insists on
	// host and x-date (without them a signature could be moved to another
	// host or time) and on the session token when one is sent.
	for _, must := range []string{"host", "x-date"} {
		if !slices.Contains(a.signedHeaders, must) {
			return a, newError("InvalidAuthorization").because("SignedHeaders must include " + must)
		}
	}
	token := r.Header.Get("X-Security-Token")
	if token != "" && !slices.Contains(a.signedHeaders, "x-security-token") {
		return a, newError("InvalidAuthorization").because("SignedHeaders must include x-security-token")
	}

	payloadHash := hashHex(body)
	if claimed := r.Header.Get("X-Content-Sha256"); claimed != "" && !strings.EqualFold(claimed, payloadHash) {
		return a, newError("SignatureDoesNotMatch").because("X-Content-Sha256 is not the SHA-256 of the body")
	}

	want := signature(k.secret, a, xdate, canonicalRequest(r, a.signedHeaders, payloadHash))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return a, newError("SignatureDoesNotMatch")
	}

	if token != k.token {
		if k.token == "" {
			return a, newError("InvalidSecretToken", "the access key is not a temporary one")
		}
		return a, newError("InvalidSecretToken", "the session token is not the one issued for the access key")
	}
	return a, nil
}

// canonicalRequest is Method\nURI\nQuery\nHeaders\nSignedHeaders\nPayloadHash.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(canonicalURI(path))
	b.WriteByte('\n')
	q, _ := url.ParseQuery(r.URL.RawQuery) // the caller refused a malformed query already
	b.WriteString(strings.ReplaceAll(q.Encode(), "+", "%20"))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		var value string
		if name == "host" {
			value = canonicalHost(r.Host)
		} else {
			value = strings.TrimSpace(r.Header.Get(name))
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalHost drops a default port, as the signer does.
func canonicalHost(host string) string {
	h, port, err := net.SplitHostPort(host)
	if err == nil && (port == "80" || port == "443") {
		return h
	}
	return host
}

// canonicalURI escapes every path segment with RFC 3986's unreserved set.
func canonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = escape(s)
	}
	return strings.Join(segs, "/")
}

func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// signature is hex(HMAC(kSigning, StringToSign)), the key derived from the
// secret over the scope's date, region, service and "request".
func signature(secret string, a authorization, xdate, canonical string) string {
	scope := a.date + "/" + a.region + "/" + a.service + "/request"
	toSign := algorithm + "\n" + xdate + "\n" + scope + "\n" + hashHex([]byte(canonical))
	k := hmacSHA256([]byte(secret), a.date)
	k = hmacSHA256(k, a.region)
	k = hmacSHA256(k, a.service)
	k = hmacSHA256(k, "request")
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
