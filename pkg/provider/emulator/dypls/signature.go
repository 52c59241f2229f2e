package dypls

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"strings"
)

// The POP "special URL encoding" differs from url.QueryEscape in three
// characters; the SDK applies these replacements to url.Values.Encode and so
// does the cloud.
var popEscaper = strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~")

// canonicalQuery is the sorted, POP-encoded form of every parameter but
// Signature, as the RPC v1 signature covers it.
func canonicalQuery(params url.Values) string {
	signed := make(url.Values, len(params))
	for k, v := range params {
		if k != "Signature" {
			signed[k] = v
		}
	}
	return popEscaper.Replace(signed.Encode())
}

// StringToSign returns the RPC v1 string to sign of a request with these
// parameters (query and form together; a Signature among them is ignored):
// METHOD + "&%2F&" + escape(canonical query).
func StringToSign(method string, params url.Values) string {
	return method + "&%2F&" + url.QueryEscape(canonicalQuery(params))
}

// Sign returns the RPC v1 signature of a request, Base64(HMAC-SHA1(secret+"&",
// StringToSign(method, params))), the value of its Signature parameter.
func Sign(method string, params url.Values, secret string) string {
	return base64.StdEncoding.EncodeToString(mac(StringToSign(method, params), secret))
}

func mac(stringToSign, secret string) []byte {
	h := hmac.New(sha1.New, []byte(secret+"&"))
	h.Write([]byte(stringToSign))
	return h.Sum(nil)
}
