package wakeup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Alibaba Cloud's V3 request signature (ACS3-HMAC-SHA256), as the
// published "V3版本请求体&签名机制" describes it and darabonba-openapi's
// signer computes it.
const (
	algorithm = "ACS3-HMAC-SHA256"
	// dateLayout is x-acs-date's ISO 8601 UTC form.
	dateLayout = "2006-01-02T15:04:05Z"
)

// sign adds the V3 common headers of action and version to r (whose body is
// body) and the Authorization that signs them with c. now and nonce are the
// request's x-acs-date and x-acs-signature-nonce.
func sign(r *http.Request, body []byte, action, version string, c provider.Credentials, now time.Time, nonce string) {
	h := r.Header
	h.Set("x-acs-action", action)
	h.Set("x-acs-version", version)
	h.Set("x-acs-date", now.UTC().Format(dateLayout))
	h.Set("x-acs-signature-nonce", nonce)
	payloadHash := hashHex(body)
	h.Set("x-acs-content-sha256", payloadHash)
	if c.SecurityToken != "" {
		h.Set("x-acs-security-token", c.SecurityToken)
		h.Set("x-acs-accesskey-id", c.AccessKeyID)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	headers, signed := canonicalHeaders(h, host)
	creq := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		canonicalQuery(r.URL.Query()),
		headers,
		signed,
		payloadHash,
	}, "\n")
	sig := hmacHex(c.AccessKeySecret, algorithm+"\n"+hashHex([]byte(creq)))
	h.Set("Authorization", algorithm+" Credential="+c.AccessKeyID+",SignedHeaders="+signed+",Signature="+sig)
}

// canonicalHeaders lists host, content-type and every x-acs-* header, lower
// case and sorted, each "name:value\n" with the values trimmed (several
// values of one name sorted and joined by commas), and their names joined
// by semicolons.
func canonicalHeaders(h http.Header, host string) (string, string) {
	values := map[string][]string{"host": {host}}
	for name, vs := range h {
		l := strings.ToLower(name)
		if l == "content-type" || strings.HasPrefix(l, "x-acs-") {
			values[l] = append(values[l], vs...)
		}
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		vs := make([]string, len(values[n]))
		for i, v := range values[n] {
			vs[i] = strings.TrimSpace(v)
		}
		slices.Sort(vs)
		b.WriteString(n + ":" + strings.Join(vs, ",") + "\n")
	}
	return b.String(), strings.Join(names, ";")
}

// canonicalURI is the path as sent, with the few characters that URL
// escaping and RFC 3986 disagree on put right.
func canonicalURI(escapedPath string) string {
	if escapedPath == "" {
		return "/"
	}
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(escapedPath)
}

// canonicalQuery sorts the parameters by name and percent-encodes names and
// values (RFC 3986); a parameter without a value keeps its "=".
func canonicalQuery(q url.Values) string {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		vs := slices.Clone(q[n])
		slices.Sort(vs)
		for _, v := range vs {
			parts = append(parts, percentEncode(n)+"="+percentEncode(v))
		}
	}
	return strings.Join(parts, "&")
}

func percentEncode(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacHex(secret, s string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}
