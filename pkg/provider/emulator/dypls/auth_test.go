package dypls

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The two examples Alibaba Cloud publishes for the RPC v1 signature.
func TestPublishedSignatureExamples(t *testing.T) {
	tests := []struct {
		name   string
		method string
		secret string
		params map[string]string
		want   string
	}{
		{
			name:   "DescribeRegions",
			method: "GET",
			secret: "testsecret",
			params: map[string]string{
				"AccessKeyId":      "testid",
				"Action":           "DescribeRegions",
				"Format":           "XML",
				"SignatureMethod":  "HMAC-SHA1",
				"SignatureNonce":   "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
				"SignatureVersion": "1.0",
				"Timestamp":        "2016-02-23T12:46:24Z",
				"Version":          "2014-05-26",
			},
			want: "OLeaidS1JvxuMvnyHOwuJ+uX5qY=",
		},
		{
			name:   "SendSms",
			method: "GET",
			secret: "testSecret",
			params: map[string]string{
				"PhoneNumbers":     "15300000001",
				"SignName":         "阿里云短信测试专用",
				"TemplateCode":     "SMS_71390007",
				"TemplateParam":    `{"customer":"test"}`,
				"OutId":            "123",
				"RegionId":         "cn-hangzhou",
				"Format":           "XML",
				"Timestamp":        "2017-07-12T02:42:19Z",
				"SignatureNonce":   "45e25e9b-0a6f-4070-8c85-2956eda1b466",
				"AccessKeyId":      "testId",
				"Action":           "SendSms",
				"SignatureMethod":  "HMAC-SHA1",
				"SignatureVersion": "1.0",
				"Version":          "2017-05-25",
			},
			want: "zJDF+Lrzhj/ThnlvIToysFRq6t4=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := url.Values{}
			for k, v := range tt.params {
				p.Set(k, v)
			}
			if got := Sign(tt.method, p, tt.secret); got != tt.want {
				t.Fatalf("Sign = %s, want %s (string to sign %s)", got, tt.want, StringToSign(tt.method, p))
			}
			// A Signature among the parameters is not signed.
			p.Set("Signature", tt.want)
			if got := Sign(tt.method, p, tt.secret); got != tt.want {
				t.Fatalf("Sign with Signature present = %s, want %s", got, tt.want)
			}
		})
	}
}

// Every way a request can fail the gateway, with the cloud's code and status.
func TestGatewayRefusals(t *testing.T) {
	const (
		stsID     = "STS.test-key"
		stsSecret = "sts-secret"
		stsToken  = "sts-token-1"
		oldID     = "STS.old-key"
	)
	remain := func() *req { return newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州") }
	tests := []struct {
		name   string
		req    *req
		status int
		code   string
	}{
		{"put", func() *req { r := remain().signed(); r.method = http.MethodPut; return r }(), 403, "UnsupportedHTTPMethod"},
		{"no action", remain().del("Action").signed(), 400, "MissingAction"},
		{"no version", remain().del("Version").signed(), 400, "MissingVersion"},
		{"unknown action", newReq("DescribeRegions").signed(), 404, "InvalidApi.NotFound"},
		{"other version", remain().set("Version", "2020-01-01").signed(), 404, "InvalidApi.NotFound"},
		{"bad format", remain().set("Format", "YAML").signed(), 400, "InvalidParameter.Format"},
		{"no signature", remain(), 400, "MissingSignature"},
		{"no key id", remain().del("AccessKeyId").signed(), 400, "MissingAccessKeyId"},
		{"no nonce", remain().del("SignatureNonce").signed(), 400, "MissingSignatureNonce"},
		{"no timestamp", remain().del("Timestamp").signed(), 400, "MissingTimestamp"},
		{"no signature method", remain().del("SignatureMethod").signed(), 400, "MissingSignatureMethod"},
		{"no signature version", remain().del("SignatureVersion").signed(), 400, "MissingSignatureVersion"},
		{"sha256 method", remain().set("SignatureMethod", "HMAC-SHA256").signed(), 400, "InvalidSignatureMethod"},
		{"signature version 2", remain().set("SignatureVersion", "2.0").signed(), 400, "IncompleteSignature"},
		{"bearer token", remain().set("SignatureType", "BEARERTOKEN").signed(), 400, "IncompleteSignature"},
		{"timestamp format", remain().set("Timestamp", "2026-03-01 08:00:00").signed(), 400, "InvalidTimeStamp.Format"},
		{"timestamp old", remain().set("Timestamp", fixedNow.Add(-16*time.Minute).Format("2006-01-02T15:04:05Z")).signed(), 400, "InvalidTimeStamp.Expired"},
		{"timestamp future", remain().set("Timestamp", fixedNow.Add(16*time.Minute).Format("2006-01-02T15:04:05Z")).signed(), 400, "InvalidTimeStamp.Expired"},
		{"unknown key", remain().key("nobody", "x").signed(), 404, "InvalidAccessKeyId.NotFound"},
		{"wrong secret", remain().key(DefaultAccessKeyID, "not-the-secret").signed(), 400, "SignatureDoesNotMatch"},
		{"tampered", func() *req { r := remain().signed(); r.params.Set("City", "北京"); return r }(), 400, "SignatureDoesNotMatch"},
		{"tampered method", func() *req { r := remain().signed(); r.method = http.MethodGet; return r }(), 400, "SignatureDoesNotMatch"},
		{"garbage signature", remain().set("Signature", "not base64!"), 400, "IncompleteSignature"},
		{"short signature", remain().set("Signature", "AAAA"), 400, "IncompleteSignature"},
		{"sts without token", remain().key(stsID, stsSecret).signed(), 400, "MissingSecurityToken"},
		{"sts wrong token", remain().key(stsID, stsSecret).set("SecurityToken", "forged").signed(), 400, "InvalidSecurityToken.Malformed"},
		{"sts token of another key", remain().key(stsID, stsSecret).set("SecurityToken", "old-token").signed(), 400, "InvalidSecurityToken.MismatchWithAccessKey"},
		{"sts token expired", remain().key(oldID, stsSecret).set("SecurityToken", "old-token").signed(), 400, "InvalidSecurityToken.Expired"},
		{"static key with token", remain().set("SecurityToken", stsToken).signed(), 400, "InvalidSecurityToken.MismatchWithAccessKey"},
		{"long nonce", remain().set("SignatureNonce", strings.Repeat("n", 300)).signed(), 400, "IncompleteSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t,
				WithKey(DefaultAccessKeyID, DefaultAccessKeySecret),
				WithSTSToken(stsID, stsSecret, stsToken),
				WithSTSTokenUntil(oldID, stsSecret, "old-token", fixedNow.Add(-time.Second)),
			)
			a := serve(t, s, tt.req)
			if a.status != tt.status || a.code() != tt.code {
				t.Fatalf("got %d %q, want %d %q: %s", a.status, a.code(), tt.status, tt.code, a.raw)
			}
			for _, f := range []string{"RequestId", "HostId", "Message", "Recommend"} {
				if a.body[f] == "" || a.body[f] == nil {
					t.Errorf("gateway error without %s: %s", f, a.raw)
				}
			}
			if n := s.Calls("QuerySecretNoRemain"); n != 0 {
				t.Errorf("a refused request reached the action: Calls = %d", n)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	s := newTestServer(t)
	hr := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed().httpRequest()
	hr.URL.Path = "/v2/remain"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, hr)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "InvalidApi.NotFound") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestSignatureMismatchEchoesStringToSign(t *testing.T) {
	s := newTestServer(t)
	r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").key(DefaultAccessKeyID, "wrong").signed()
	a := serve(t, s, r)
	msg, _ := a.body["Message"].(string)
	want := "server string to sign is:" + StringToSign(http.MethodPost, r.params)
	if !strings.HasSuffix(msg, want) {
		t.Fatalf("message %q does not end with %q", msg, want)
	}
}

func TestWithinSkewAccepted(t *testing.T) {
	for _, d := range []time.Duration{-14 * time.Minute, 14 * time.Minute, 15 * time.Minute} {
		s := newTestServer(t)
		r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").
			set("Timestamp", fixedNow.Add(d).Format("2006-01-02T15:04:05Z")).signed()
		if a := serve(t, s, r); a.status != 200 || a.code() != "OK" {
			t.Fatalf("skew %v: got %d %s", d, a.status, a.raw)
		}
	}
}

func TestReplayRefused(t *testing.T) {
	s := newTestServer(t, WithKey(DefaultAccessKeyID, DefaultAccessKeySecret), WithKey("other", "other-secret"))
	r := newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed()
	if a := serve(t, s, r); a.code() != "OK" {
		t.Fatalf("first: %s", a.raw)
	}
	a := serve(t, s, r)
	if a.status != 400 || a.code() != "SignatureNonceUsed" {
		t.Fatalf("replay: got %d %s", a.status, a.raw)
	}
	if n := len(s.Purchases()); n != 1 {
		t.Fatalf("a replayed buy bought again: %d purchases", n)
	}
	// The same nonce from another key is another request.
	r2 := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").key("other", "other-secret").
		set("SignatureNonce", r.params.Get("SignatureNonce")).signed()
	if a := serve(t, s, r2); a.code() != "OK" {
		t.Fatalf("same nonce, other key: %s", a.raw)
	}
	// A refused request does not burn its nonce.
	r3 := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州")
	r3.secret = "wrong"
	r3.signed()
	if a := serve(t, s, r3); a.code() != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %s", a.raw)
	}
	r3.secret = DefaultAccessKeySecret
	r3.signed()
	if a := serve(t, s, r3); a.code() != "OK" {
		t.Fatalf("same nonce after a refusal: %s", a.raw)
	}
}

func TestFormBodyAndGET(t *testing.T) {
	s := newTestServer(t)
	post := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州")
	post.inBody = true
	post.signed()
	if a := serve(t, s, post); a.code() != "OK" {
		t.Fatalf("form POST: %s", a.raw)
	}
	get := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州")
	get.method = http.MethodGet
	get.signed()
	if a := serve(t, s, get); a.code() != "OK" {
		t.Fatalf("GET: %s", a.raw)
	}
	// A form parameter is signed like a query parameter.
	tampered := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州")
	tampered.inBody = true
	tampered.signed()
	tampered.params.Set("City", "北京")
	if a := serve(t, s, tampered); a.code() != "SignatureDoesNotMatch" {
		t.Fatalf("tampered form: %s", a.raw)
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := newTestServer(t)
	r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州", "Padding", strings.Repeat("x", maxBodyBytes))
	r.inBody = true
	r.signed()
	a := serve(t, s, r)
	if a.status != 400 || !strings.Contains(a.raw, "InvalidParameter") {
		t.Fatalf("got %d %s", a.status, a.raw)
	}
}

func TestXMLFormat(t *testing.T) {
	s := newTestServer(t)
	r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "全国列表").del("Format").signed()
	a := serve(t, s, r)
	for _, want := range []string{"<QuerySecretNoRemainResponse>", "<Code>OK</Code>", "<RemainDTOList><remainDTO><Amount>", "<City>全国列表</City>"} {
		if !strings.Contains(a.raw, want) {
			t.Errorf("XML answer lacks %s: %s", want, a.raw)
		}
	}
	r = newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").set("Format", "XML").key("nobody", "x").signed()
	a = serve(t, s, r)
	if a.status != 404 || !strings.Contains(a.raw, "<Error>") || !strings.Contains(a.raw, "<Code>InvalidAccessKeyId.NotFound</Code>") {
		t.Fatalf("XML error: %d %s", a.status, a.raw)
	}
}

func TestNonceStoreBounded(t *testing.T) {
	n := newNonceStore(3)
	t0 := fixedNow
	for i, k := range []string{"a", "b", "c"} {
		if got := n.use(k, t0.Add(time.Duration(i+1)*time.Minute), t0); got != nonceFresh {
			t.Fatalf("use %s = %v", k, got)
		}
	}
	if got := n.use("a", t0.Add(time.Hour), t0); got != nonceUsed {
		t.Fatalf("reuse = %v, want used", got)
	}
	if got := n.use("d", t0.Add(time.Hour), t0); got != nonceFull {
		t.Fatalf("over the bound = %v, want full", got)
	}
	// Once "a" and "b" have left the window they are forgotten and room frees up.
	later := t0.Add(2*time.Minute + time.Second)
	if got := n.use("d", later.Add(time.Hour), later); got != nonceFresh {
		t.Fatalf("after expiry = %v, want fresh", got)
	}
	if n.len() != 2 {
		t.Fatalf("store holds %d nonces, want 2 (c, d)", n.len())
	}
	if got := n.use("a", later.Add(time.Hour), later); got != nonceFresh {
		t.Fatalf("an expired nonce is new again = %v", got)
	}
}

func TestNonceStoreFullAnswers503(t *testing.T) {
	s := newTestServer(t)
	s.nonces = newNonceStore(1)
	if a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed()); a.code() != "OK" {
		t.Fatalf("first: %s", a.raw)
	}
	a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed())
	if a.status != 503 || a.code() != "ServiceUnavailable" {
		t.Fatalf("full store: %d %s", a.status, a.raw)
	}
}
