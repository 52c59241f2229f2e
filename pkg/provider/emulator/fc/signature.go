package fc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The V3 signature (ACS3-HMAC-SHA256) of Alibaba Cloud's API gateways, as
// the published "V3版本请求体&签名机制" describes it and darabonba-openapi's
// signer computes it. This is the cloud's side, written apart from any
// client's signer so that a test of a client against it proves something.
const (
	algorithm  = "ACS3-HMAC-SHA256"
	dateLayout = "2006-01-02T15:04:05Z"
	// maxSkew is how far x-acs-date may be from the server's clock; a nonce
	// is remembered as long.
	maxSkew = 15 * time.Minute
)

// key is one access key the gateway knows; token is set for an STS key,
// whose requests must carry it in x-acs-security-token.
type key struct {
	secret string
	token  string
}

// verifier checks requests as the gateway does.
type verifier struct {
	keys map[string]key
	now  func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → when it may be used again
}

// required are the common headers every signed request carries.
var required = []string{"x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}

// verify checks the signature of r, whose body has been read into body,
// and returns the access key id it was signed with.
func (v *verifier) verify(r *http.Request, body []byte) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errorf(http.StatusForbidden, "AccessDenied", "the request carries no Authorization header")
	}
	id, signed, sig, err := parseAuthorization(h)
	if err != nil {
		return id, err
	}
	for _, name := range required {
		if r.Header.Get(name) == "" {
			return id, errorf(http.StatusBadRequest, "MissingRequiredHeader", "required HTTP header %s was not specified", name)
		}
	}
	// Every common header sent must be signed, or it could be changed on
	// the way.
	mustSign := []string{"host"}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-acs-") {
			mustSign = append(mustSign, l)
		}
	}
	for _, name := range mustSign {
		if !slices.Contains(signed, name) {
			return id, errorf(http.StatusForbidden, "SignatureNotMatch", "the signature must cover the header %s", name)
		}
	}

	date := r.Header.Get("x-acs-date")
	t, perr := time.Parse(dateLayout, date)
	if perr != nil {
		return id, errorf(http.StatusBadRequest, "InvalidArgument", "x-acs-date must be yyyy-MM-ddTHH:mm:ssZ, not %q", date)
	}
	now := v.now()
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return id, errorf(http.StatusForbidden, "AccessDenied", "x-acs-date %s is more than 15 minutes from the server's time", date)
	}
	k, ok := v.keys[id]
	if !ok {
		return id, errorf(http.StatusForbidden, "InvalidAccessKeyID", "invalid access key ID '%s'", id)
	}
	payloadHash := hashHex(body)
	if !strings.EqualFold(r.Header.Get("x-acs-content-sha256"), payloadHash) {
		return id, errorf(http.StatusForbidden, "SignatureNotMatch", "x-acs-content-sha256 is not the SHA-256 of the body")
	}
	want := hmacHex(k.secret, algorithm+"\n"+hashHex([]byte(canonicalRequest(r, signed, payloadHash))))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return id, errorf(http.StatusForbidden, "SignatureNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your access key and signing method")
	}
	if token := r.Header.Get("x-acs-security-token"); token != k.token {
		if k.token == "" {
			return id, errorf(http.StatusForbidden, "InvalidAccessKeyID", "the access key '%s' is not a temporary one", id)
		}
		return id, errorf(http.StatusForbidden, "InvalidAccessKeyID", "the security token is not the one issued for '%s'", id)
	}
	if !v.fresh(r.Header.Get("x-acs-signature-nonce"), now) {
		return id, errorf(http.StatusForbidden, "AccessDenied", "x-acs-signature-nonce was used within the last 15 minutes")
	}
	return id, nil
}

// fresh records nonce and reports whether it was not used within maxSkew.
func (v *verifier) fresh(nonce string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, until := range v.nonces {
		if now.After(until) {
			delete(v.nonces, n)
		}
	}
	if _, used := v.nonces[nonce]; used {
		return false
	}
	v.nonces[nonce] = now.Add(maxSkew)
	return true
}

// parseAuthorization reads
// "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex".
func parseAuthorization(h string) (id string, signed []string, sig string, err *apiError) {
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != algorithm {
		return "", nil, "", errorf(http.StatusBadRequest, "InvalidArgument", "the Authorization header must use %s", algorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return "", nil, "", errorf(http.StatusBadRequest, "InvalidArgument", "the Authorization header must be %s Credential=...,SignedHeaders=...,Signature=...", algorithm)
		}
		fields[k] = v
	}
	id, sig = fields["Credential"], fields["Signature"]
	if id == "" || sig == "" || fields["SignedHeaders"] == "" {
		return id, nil, "", errorf(http.StatusBadRequest, "InvalidArgument", "the Authorization header needs Credential, SignedHeaders and Signature")
	}
	signed = strings.Split(fields["SignedHeaders"], ";")
	if !slices.IsSorted(signed) {
		return id, nil, "", errorf(http.StatusForbidden, "SignatureNotMatch", "SignedHeaders must be sorted")
	}
	return id, signed, sig, nil
}

// canonicalRequest is Method\nURI\nQuery\nHeaders\nSignedHeaders\nPayloadHash.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(rfc3986.Replace(path) + "\n")
	q, _ := url.ParseQuery(r.URL.RawQuery) // a malformed query was refused before
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	slices.Sort(names)
	var pairs []string
	for _, n := range names {
		vs := slices.Clone(q[n])
		slices.Sort(vs)
		for _, v := range vs {
			pairs = append(pairs, encode(n)+"="+encode(v))
		}
	}
	b.WriteString(strings.Join(pairs, "&") + "\n")
	for _, name := range signed {
		var vs []string
		if name == "host" {
			vs = []string{r.Host}
		} else {
			for _, v := range r.Header.Values(name) {
				vs = append(vs, strings.TrimSpace(v))
			}
			slices.Sort(vs)
		}
		b.WriteString(name + ":" + strings.Join(vs, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payloadHash)
	return b.String()
}

// rfc3986 puts right what Go's URL escaping leaves differently from RFC 3986.
var rfc3986 = strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~")

func encode(s string) string { return rfc3986.Replace(url.QueryEscape(s)) }

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacHex(secret, s string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}
