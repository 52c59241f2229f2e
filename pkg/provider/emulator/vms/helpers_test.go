package vms

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/volcengine/volc-sdk-golang/base"
)

// The emulator's clock in tests that sign with a fixed X-Date.
var testNow = time.Date(2025, 6, 5, 7, 35, 15, 0, time.UTC)

const (
	testAK     = "AKLTtestkey"
	testSK     = "test-secret-key=="
	testHost   = "cloud-vms.volcengineapi.com"
	poolQuery  = "Action=NumberPoolList&Version=2022-01-01"
	numQuery   = "Action=NumberList&Version=2022-01-01"
	jsonCT     = "application/json; charset=utf-8"
	stsAK      = "AKLTsts"
	stsSK      = "sts-secret"
	stsToken   = "sts-session-token-value"
	otherToken = "some-other-token"
)

func newTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	base := []Option{WithKey(testAK, testSK), WithSTSToken(stsAK, stsSK, stsToken), WithClock(func() time.Time { return testNow })}
	s, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newReq builds an unsigned request to the emulator with X-Date = testNow.
func newReq(method, query, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, "http://"+testHost+"/?"+query, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Header.Set("X-Date", testNow.Format(dateLayout))
	return r
}

func creds() base.Credentials {
	return base.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK, Service: "vms", Region: "cn-beijing"}
}

// signed builds a request signed by volc-sdk-golang/base, the signer the
// SDK uses.
func signed(method, query, contentType, body string) *http.Request {
	return creds().Sign(newReq(method, query, contentType, body))
}

func poolReq(body string) *http.Request { return signed("POST", poolQuery, jsonCT, body) }
func numReq(body string) *http.Request  { return signed("POST", numQuery, jsonCT, body) }

// answer is the cloud's envelope as a client parses it.
type answer struct {
	ResponseMetadata struct {
		RequestId, Action, Version, Service, Region string
		Error                                       *struct {
			CodeN         int
			Code, Message string
		}
	}
	Result json.RawMessage
}

type poolPage struct {
	Total, Limit, Offset int
	Records              []poolRecord
}

type numberPage struct {
	Total, Limit, Offset int
	Records              []numberRecord
}

// serve runs r through s and decodes the answer.
func serve(t *testing.T, s *Server, r *http.Request) (int, answer) {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var a answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, w.Body.String())
	}
	if a.ResponseMetadata.RequestId == "" || a.ResponseMetadata.Service != "vms" {
		t.Fatalf("answer lacks ResponseMetadata: %s", w.Body.String())
	}
	return w.Code, a
}

// ok serves r, requires success and decodes Result into v.
func ok(t *testing.T, s *Server, r *http.Request, v any) {
	t.Helper()
	status, a := serve(t, s, r)
	if status != http.StatusOK || a.ResponseMetadata.Error != nil {
		t.Fatalf("status %d, error %+v", status, a.ResponseMetadata.Error)
	}
	if err := json.Unmarshal(a.Result, v); err != nil {
		t.Fatalf("Result: %v", err)
	}
}

func pools(t *testing.T, s *Server, body string) poolPage {
	t.Helper()
	var p poolPage
	ok(t, s, poolReq(body), &p)
	return p
}

func numbers(t *testing.T, s *Server, body string) numberPage {
	t.Helper()
	var p numberPage
	ok(t, s, numReq(body), &p)
	return p
}

// replaceBody swaps the body of a signed request, as a tamperer would.
func replaceBody(r *http.Request, body string) {
	r.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	r.ContentLength = int64(len(body))
}
