package vms

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/volcengine/volc-sdk-golang/base"
)

// The example Volcengine publishes for its signature (IAM ListUsers).
const (
	exampleAK        = "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg"
	exampleSK        = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ=="
	exampleURL       = "http://iam.volcengineapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0"
	exampleXDate     = "20240619T071306Z"
	exampleSignature = "e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93"
)

func exampleVerifier() *verifier {
	return &verifier{
		service: "iam",
		regions: []string{"cn-beijing"},
		keys:    map[string]key{exampleAK: {secret: exampleSK}},
		now:     func() time.Time { return time.Date(2024, 6, 19, 7, 13, 6, 0, time.UTC) },
	}
}

func exampleRequest() *http.Request {
	r := httptest.NewRequest("GET", exampleURL, nil)
	r.Header.Set("X-Date", exampleXDate)
	r.Header.Set("Authorization", "HMAC-SHA256 Credential="+exampleAK+"/20240619/cn-beijing/iam/request, SignedHeaders=host;x-date, Signature="+exampleSignature)
	return r
}

func TestPublishedExample(t *testing.T) {
	v := exampleVerifier()
	if _, err := v.verify(exampleRequest(), nil); err != nil {
		t.Fatalf("the published example is refused: %v", err)
	}

	tampered := map[string]func(r *http.Request){
		"query":  func(r *http.Request) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "Limit=10", "Limit=11", 1) },
		"host":   func(r *http.Request) { r.Host = "iam2.volcengineapi.com" },
		"method": func(r *http.Request) { r.Method = "POST" },
		"path":   func(r *http.Request) { r.URL.Path = "/v2" },
		"signature": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "e31c", "f31c", 1))
		},
	}
	for name, mutate := range tampered {
		t.Run(name, func(t *testing.T) {
			r := exampleRequest()
			mutate(r)
			_, err := v.verify(r, nil)
			if err == nil || err.code != "SignatureDoesNotMatch" {
				t.Fatalf("tampered %s: got %v, want SignatureDoesNotMatch", name, err)
			}
		})
	}
	t.Run("body", func(t *testing.T) {
		if _, err := v.verify(exampleRequest(), []byte("x")); err == nil || err.code != "SignatureDoesNotMatch" {
			t.Fatalf("a body the signer did not hash: got %v", err)
		}
	})
}

// TestBaseSignerAccepted checks the verifier against what
// volc-sdk-golang/base.Credentials.Sign, the SDK's signer, actually sends:
// every method and body shape the gateway accepts, default and explicit
// ports, an STS token.
func TestBaseSignerAccepted(t *testing.T) {
	s := newTestServer(t)
	cases := []struct {
		name, method, target, ctype, body string
		c                                 base.Credentials
	}{
		{"json", "POST", "http://" + testHost + "/?" + poolQuery, jsonCT, `{"Limit":5}`, creds()},
		{"form", "POST", "http://" + testHost + "/?" + poolQuery, "application/x-www-form-urlencoded; charset=utf-8", "Limit=5&NumberPoolName=%E8%90%A5%E9%94%80", creds()},
		{"get", "GET", "http://" + testHost + "/?" + poolQuery + "&Limit=5&NumberPoolName=%E8%90%A5%E9%94%80", "", "", creds()},
		{"port 443 dropped", "POST", "https://" + testHost + ":443/?" + poolQuery, jsonCT, `{}`, creds()},
		{"loopback port kept", "POST", "http://127.0.0.1:9100/?" + poolQuery, jsonCT, `{}`, creds()},
		{"empty body", "POST", "http://" + testHost + "/?" + poolQuery, jsonCT, "", creds()},
		{"north region", "POST", "http://" + testHost + "/?" + poolQuery, jsonCT, `{}`, base.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK, Service: "vms", Region: "cn-north-1"}},
		{"sts", "POST", "http://" + testHost + "/?" + poolQuery, jsonCT, `{}`, base.Credentials{AccessKeyID: stsAK, SecretAccessKey: stsSK, SessionToken: stsToken, Service: "vms", Region: "cn-beijing"}},
		{"space in query", "GET", "http://" + testHost + "/?" + poolQuery + "&NumberPoolName=a+b", "", "", creds()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			r.Header.Set("X-Date", testNow.Format(dateLayout))
			tc.c.Sign(r)
			status, a := serve(t, s, r)
			if status != http.StatusOK || a.ResponseMetadata.Error != nil {
				t.Fatalf("status %d, error %+v", status, a.ResponseMetadata.Error)
			}
			if a.ResponseMetadata.Region != tc.c.Region || a.ResponseMetadata.Action != "NumberPoolList" || a.ResponseMetadata.Version != APIVersion {
				t.Fatalf("metadata %+v", a.ResponseMetadata)
			}
		})
	}
}

// The SDK's retry re-sends the very same signed request; the gateway has no
// nonce and answers it again.
func TestReplayAccepted(t *testing.T) {
	s := newTestServer(t)
	body := `{"Limit":3}`
	r1 := poolReq(body)
	r2 := r1.Clone(r1.Context())
	r2.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	for i, r := range []*http.Request{r1, r2} {
		if status, a := serve(t, s, r); status != http.StatusOK {
			t.Fatalf("send %d: status %d, error %+v", i+1, status, a.ResponseMetadata.Error)
		}
	}
	if got := s.Calls("NumberPoolList"); got != 2 {
		t.Fatalf("Calls = %d, want 2", got)
	}
}

func TestXDateWindowEdges(t *testing.T) {
	s := newTestServer(t)
	for _, off := range []time.Duration{-maxSkew, maxSkew} {
		r := newReq("POST", poolQuery, jsonCT, `{}`)
		r.Header.Set("X-Date", testNow.Add(off).Format(dateLayout))
		creds().Sign(r)
		if status, a := serve(t, s, r); status != http.StatusOK {
			t.Fatalf("X-Date %v from now: status %d, error %+v", off, status, a.ResponseMetadata.Error)
		}
	}
}

// signManually signs r like the gateway's signer but with the given signed
// headers, for requests base.Credentials.Sign cannot produce.
func signManually(r *http.Request, body []byte, ak, sk string, signedHeaders []string) {
	xdate := r.Header.Get("X-Date")
	a := authorization{accessKeyID: ak, date: xdate[:8], region: "cn-beijing", service: "vms", signedHeaders: signedHeaders}
	sig := signature(sk, a, xdate, canonicalRequest(r, signedHeaders, hashHex(body)))
	r.Header.Set("Authorization", "HMAC-SHA256 Credential="+ak+"/"+a.date+"/cn-beijing/vms/request, SignedHeaders="+strings.Join(signedHeaders, ";")+", Signature="+sig)
}

func setAuth(r *http.Request, from, to string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), from, to, 1))
}

// TestRefusals is every way a request is refused, with the code and status
// the cloud answers it with.
func TestRefusals(t *testing.T) {
	stsCreds := base.Credentials{AccessKeyID: stsAK, SecretAccessKey: stsSK, Service: "vms", Region: "cn-beijing"}
	withDate := func(d time.Time) func() *http.Request {
		return func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			r.Header.Set("X-Date", d.Format(dateLayout))
			return creds().Sign(r)
		}
	}
	signAs := func(c base.Credentials) func() *http.Request {
		return func() *http.Request { return c.Sign(newReq("POST", poolQuery, jsonCT, `{}`)) }
	}
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		// Authentication.
		{"no Authorization", func() *http.Request { return newReq("POST", poolQuery, jsonCT, `{}`) }, 401, "MissingAuthenticationToken"},
		{"not HMAC-SHA256", func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			r.Header.Set("Authorization", "Basic eDp5")
			return r
		}, 400, "InvalidAuthorization"},
		{"part without =", func() *http.Request { r := poolReq(`{}`); setAuth(r, "SignedHeaders=", "SignedHeaders"); return r }, 400, "InvalidAuthorization"},
		{"part twice", func() *http.Request {
			r := poolReq(`{}`)
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", Signature=00")
			return r
		}, 400, "InvalidAuthorization"},
		{"no SignedHeaders", func() *http.Request { r := poolReq(`{}`); setAuth(r, "SignedHeaders=", "Signed="); return r }, 400, "InvalidAuthorization"},
		{"no Signature", func() *http.Request {
			r := poolReq(`{}`)
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
			return r
		}, 401, "MissingSignature"},
		{"empty Signature", func() *http.Request {
			r := poolReq(`{}`)
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.Index(h, "Signature=")+len("Signature=")])
			return r
		}, 401, "MissingSignature"},
		{"credential without terminator", func() *http.Request { r := poolReq(`{}`); setAuth(r, "/vms/request", "/vms"); return r }, 400, "InvalidCredential"},
		{"credential terminator not request", func() *http.Request { r := poolReq(`{}`); setAuth(r, "/vms/request", "/vms/aws4_request"); return r }, 400, "InvalidCredential"},
		{"missing X-Date", func() *http.Request { r := poolReq(`{}`); r.Header.Del("X-Date"); return r }, 400, "MissingRequestInfo"},
		{"malformed X-Date", func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			r.Header.Set("X-Date", "2025-06-05T07:35:15Z")
			return creds().Sign(r)
		}, 403, "InvalidTimestamp"},
		{"stale X-Date", withDate(testNow.Add(-maxSkew - time.Second)), 403, "InvalidTimestamp"},
		{"future X-Date", withDate(testNow.Add(maxSkew + time.Second)), 403, "InvalidTimestamp"},
		{"scope date is not X-Date's", func() *http.Request { r := poolReq(`{}`); setAuth(r, "/20250605/", "/20250604/"); return r }, 400, "InvalidCredential"},
		{"wrong region", signAs(base.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK, Service: "vms", Region: "cn-shanghai"}), 400, "InvalidCredential"},
		{"wrong service", signAs(base.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK, Service: "iam", Region: "cn-beijing"}), 400, "InvalidCredential"},
		{"unknown access key", signAs(base.Credentials{AccessKeyID: "AKLTnobody", SecretAccessKey: testSK, Service: "vms", Region: "cn-beijing"}), 401, "InvalidAccessKey"},
		{"wrong secret", signAs(base.Credentials{AccessKeyID: testAK, SecretAccessKey: "not-the-secret", Service: "vms", Region: "cn-beijing"}), 401, "SignatureDoesNotMatch"},
		{"host not signed", func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			signManually(r, []byte(`{}`), testAK, testSK, []string{"x-date"})
			return r
		}, 400, "InvalidAuthorization"},
		{"x-date not signed", func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			signManually(r, []byte(`{}`), testAK, testSK, []string{"host"})
			return r
		}, 400, "InvalidAuthorization"},
		{"upper-case signed header", func() *http.Request { r := poolReq(`{}`); setAuth(r, "host;", "Host;"); return r }, 400, "InvalidAuthorization"},
		{"session token not signed", func() *http.Request {
			r := newReq("POST", poolQuery, jsonCT, `{}`)
			signManually(r, []byte(`{}`), stsAK, stsSK, []string{"host", "x-date"})
			r.Header.Set("X-Security-Token", stsToken)
			return r
		}, 400, "InvalidAuthorization"},

		// Tampering after signing.
		{"tampered body", func() *http.Request { r := poolReq(`{"Limit":5}`); replaceBody(r, `{"Limit":50}`); return r }, 401, "SignatureDoesNotMatch"},
		{"tampered body and its hash header", func() *http.Request {
			r := poolReq(`{"Limit":5}`)
			replaceBody(r, `{"Limit":50}`)
			r.Header.Set("X-Content-Sha256", hashHex([]byte(`{"Limit":50}`)))
			return r
		}, 401, "SignatureDoesNotMatch"},
		{"tampered body, hash header dropped", func() *http.Request {
			r := poolReq(`{"Limit":5}`)
			replaceBody(r, `{"Limit":50}`)
			r.Header.Del("X-Content-Sha256")
			return r
		}, 401, "SignatureDoesNotMatch"},
		{"tampered signed header", func() *http.Request { r := poolReq(`{}`); r.Header.Set("Content-Type", "application/json"); return r }, 401, "SignatureDoesNotMatch"},
		{"tampered query", func() *http.Request { r := poolReq(`{}`); r.URL.RawQuery += "&Limit=5"; return r }, 401, "SignatureDoesNotMatch"},
		{"tampered host", func() *http.Request { r := poolReq(`{}`); r.Host = "evil.example.com"; return r }, 401, "SignatureDoesNotMatch"},
		{"tampered path", func() *http.Request { r := poolReq(`{}`); r.URL.Path = "/admin"; return r }, 401, "SignatureDoesNotMatch"},
		{"tampered signature", func() *http.Request {
			r := poolReq(`{}`)
			h := r.Header.Get("Authorization")
			i := strings.Index(h, "Signature=") + len("Signature=")
			flip := map[byte]byte{'0': '1'}[h[i]]
			if flip == 0 {
				flip = '0'
			}
			r.Header.Set("Authorization", h[:i]+string(flip)+h[i+1:])
			return r
		}, 401, "SignatureDoesNotMatch"},
		{"upper-case signature", func() *http.Request {
			r := poolReq(`{}`)
			h := r.Header.Get("Authorization")
			i := strings.Index(h, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", h[:i]+strings.ToUpper(h[i:]))
			return r
		}, 401, "SignatureDoesNotMatch"},

		// STS.
		{"sts key without token", signAs(stsCreds), 401, "InvalidSecretToken"},
		{"sts key with another token", signAs(base.Credentials{AccessKeyID: stsAK, SecretAccessKey: stsSK, SessionToken: otherToken, Service: "vms", Region: "cn-beijing"}), 401, "InvalidSecretToken"},
		{"token with a long-term key", signAs(base.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK, SessionToken: stsToken, Service: "vms", Region: "cn-beijing"}), 401, "InvalidSecretToken"},

		// Routing.
		{"unknown action", func() *http.Request { return signed("POST", "Action=BuyNumber&Version=2022-01-01", jsonCT, `{}`) }, 404, "InvalidActionOrVersion"},
		{"wrong version", func() *http.Request { return signed("POST", "Action=NumberPoolList&Version=2021-01-01", jsonCT, `{}`) }, 404, "InvalidActionOrVersion"},
		{"no Action", func() *http.Request { return signed("POST", "Version=2022-01-01", jsonCT, `{}`) }, 400, "MissingParameter"},
		{"no Version", func() *http.Request { return signed("POST", "Action=NumberPoolList", jsonCT, `{}`) }, 400, "MissingParameter"},
		{"PUT", func() *http.Request { return signed("PUT", poolQuery, jsonCT, `{}`) }, 405, "MethodNotAllowed"},
		{"malformed query", func() *http.Request { r := poolReq(`{}`); r.URL.RawQuery += "&x=%zz"; return r }, 400, "InvalidParameter"},

		// Parameters.
		{"body over 1 MiB", func() *http.Request { return poolReq(`{"NumberPoolName":"` + strings.Repeat("a", maxBody) + `"}`) }, 400, "InvalidParameter"},
		{"body not JSON", func() *http.Request { return poolReq(`{"Limit":`) }, 400, "InvalidParameter"},
		{"body a JSON array", func() *http.Request { return poolReq(`[1]`) }, 400, "InvalidParameter"},
		{"body JSON null", func() *http.Request { return poolReq(`null`) }, 400, "InvalidParameter"},
		{"unsupported Content-Type", func() *http.Request { return signed("POST", poolQuery, "text/plain", `Limit=5`) }, 400, "InvalidParameter"},
		{"malformed form", func() *http.Request {
			return signed("POST", poolQuery, "application/x-www-form-urlencoded", `Limit=%zz`)
		}, 400, "InvalidParameter"},
		{"negative Limit", func() *http.Request { return poolReq(`{"Limit":-1}`) }, 400, "InvalidParameter"},
		{"negative Offset", func() *http.Request { return poolReq(`{"Offset":-1}`) }, 400, "InvalidParameter"},
		{"Limit not an integer", func() *http.Request { return poolReq(`{"Limit":"ten"}`) }, 400, "InvalidParameter"},
		{"Limit a fraction", func() *http.Request { return poolReq(`{"Limit":2.5}`) }, 400, "InvalidParameter"},
		{"Limit a boolean", func() *http.Request { return poolReq(`{"Limit":true}`) }, 400, "InvalidParameter"},
		{"Offset over int32", func() *http.Request { return poolReq(`{"Offset":2147483648}`) }, 400, "InvalidParameter"},
		{"NumberPoolNo a number", func() *http.Request { return poolReq(`{"NumberPoolNo":123}`) }, 400, "InvalidParameter"},
		{"ServiceType in GET query not a number", func() *http.Request { return signed("GET", poolQuery+"&ServiceType=x", "", "") }, 400, "InvalidParameter"},
		{"ServiceType 300", func() *http.Request { return poolReq(`{"ServiceType":300}`) }, 200, "IllegalArgument"},
		{"SubServiceType 999", func() *http.Request { return poolReq(`{"SubServiceType":999}`) }, 200, "IllegalArgument"},
		{"NumberList an object", func() *http.Request { return numReq(`{"NumberList":{"a":1}}`) }, 400, "InvalidParameter"},
		{"NumberList a number", func() *http.Request { return numReq(`{"NumberList":17057100003}`) }, 400, "InvalidParameter"},
		{"NumberList over 500", func() *http.Request {
			list := strings.Repeat(`"1",`, maxNumbers) + `"2"`
			return numReq(`{"NumberList":[` + list + `]}`)
		}, 400, "InvalidParameter"},
		{"NumberStatusCode 9", func() *http.Request { return numReq(`{"NumberStatusCode":9}`) }, 200, "IllegalArgument"},
		{"NumberTypeCode 2", func() *http.Request { return numReq(`{"NumberTypeCode":2}`) }, 200, "IllegalArgument"},
		{"NumberPoolTypeCode 150", func() *http.Request { return numReq(`{"NumberPoolTypeCode":150}`) }, 200, "IllegalArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			status, a := serve(t, s, tc.req())
			e := a.ResponseMetadata.Error
			if e == nil {
				t.Fatalf("status %d without an error, want %d %s", status, tc.status, tc.code)
			}
			if status != tc.status || e.Code != tc.code {
				t.Fatalf("got %d %s (%s), want %d %s", status, e.Code, e.Message, tc.status, tc.code)
			}
			if status != Status(e.Code) || e.CodeN != codes[e.Code].codeN {
				t.Fatalf("%s answered with %d/CodeN %d, the table says %d/%d", e.Code, status, e.CodeN, Status(e.Code), codes[e.Code].codeN)
			}
			if len(a.Result) != 0 {
				t.Fatalf("an error answer has a Result: %s", a.Result)
			}
			for _, secret := range []string{testSK, stsSK, stsToken} {
				if strings.Contains(e.Message, secret) {
					t.Fatalf("the message leaks a secret: %s", e.Message)
				}
			}
		})
	}
}

// A request built by hand may have no body at all.
func TestNilBody(t *testing.T) {
	s := newTestServer(t)
	r := signed("GET", poolQuery, "", "")
	r.Body = nil
	if status, a := serve(t, s, r); status != http.StatusOK {
		t.Fatalf("status %d, error %+v", status, a.ResponseMetadata.Error)
	}
}

// A refused request never reaches its action, so it is not counted.
func TestRefusedNotCounted(t *testing.T) {
	s := newTestServer(t)
	r := poolReq(`{}`)
	replaceBody(r, `{"Limit":1}`)
	serve(t, s, r)
	if got := s.Calls("NumberPoolList"); got != 0 {
		t.Fatalf("Calls = %d after a refused call, want 0", got)
	}
}
