package provider

import (
	"strings"
	"testing"
)

func TestSafeMessage(t *testing.T) {
	const (
		keyID  = "LTAI5tKeyIdValue"
		token  = "CAISTokenMustNotShow"
		secret = "SecretMustNotShow"
	)
	for _, tc := range []struct {
		name, in, want string
		leaks          []string
	}{
		{"plain", "Request was denied due to user flow control.", "Request was denied due to user flow control.", nil},
		{"Dyplsapi SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D" + keyID + "%26Action%3DBuySecretNo%26SecurityToken%3D" + token,
			"Specified signature is not matched with our calculation. " + echoCut, []string{keyID, token, "AccessKeyId", "BuySecretNo"}},
		{"quote without a sentence before it", "StringToSign: GET\n/\nX-Date=20240101", echoCut, []string{"X-Date"}},
		{"canonical request", "The request signature we calculated does not match. The Canonical Request for this request should have been 'GET\n/\nAction=NumberPoolList\nx-security-token:" + token + "'",
			"The request signature we calculated does not match. " + echoCut, []string{token, "NumberPoolList"}},
		{"key id pair", "InvalidAccessKeyId: AccessKeyId=" + keyID + " is disabled", "InvalidAccessKeyId: AccessKeyId=[redacted] is disabled", []string{keyID}},
		{"encoded pairs", "bad AccessKeyId%3D" + keyID + "&SecurityToken%253D" + token, "bad AccessKeyId%3D[redacted]&SecurityToken%253D[redacted]", []string{keyID, token}},
		{"JSON pair", `{"AccessKeySecret":"` + secret + `"}`, `{"AccessKeySecret":"[redacted]"}`, []string{secret}},
		{"credential scope", "Credential=" + keyID + "/20240101/cn-beijing/vms/request, Signature=abc", "Credential=[redacted], Signature=[redacted]", []string{keyID, "abc"}},
		{"URL password", "dial nats://xnum:" + secret + "@10.0.0.5:4222", "dial nats://xnum:[redacted]@10.0.0.5:4222", []string{secret}},
		{"controls", "line one\r\nline two\x00\u2028three", "line one line two three", nil},
		{"invalid UTF-8", "bad \xff byte", "bad ? byte", nil},
		{"long", strings.Repeat("号", 400), strings.Repeat("号", maxMessageRunes) + "…", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SafeMessage(tc.in)
			if got != tc.want {
				t.Errorf("SafeMessage(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
			for _, l := range tc.leaks {
				if strings.Contains(got, l) {
					t.Errorf("%q left in %q", l, got)
				}
			}
		})
	}
}
