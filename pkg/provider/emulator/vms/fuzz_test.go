package vms

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// checkEnvelope requires the cloud's envelope: JSON with ResponseMetadata,
// and either an error (with the table's status) or a Result on 200.
func checkEnvelope(t *testing.T, w *httptest.ResponseRecorder) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, w.Body.String())
	}
	if a.ResponseMetadata.RequestId == "" || a.ResponseMetadata.Service != "vms" {
		t.Fatalf("no ResponseMetadata: %s", w.Body.String())
	}
	if e := a.ResponseMetadata.Error; e != nil {
		if _, known := codes[e.Code]; !known || w.Code != Status(e.Code) || len(a.Result) != 0 {
			t.Fatalf("error answer %d %+v with Result %s", w.Code, e, a.Result)
		}
	} else if w.Code != http.StatusOK || len(a.Result) == 0 {
		t.Fatalf("success answer %d without Result: %s", w.Code, w.Body.String())
	}
	return a
}

// FuzzUnsigned throws arbitrary requests at the server: it must never panic,
// always answer the cloud's error envelope, and never answer 2xx, since no
// fuzzed request carries a valid signature.
func FuzzUnsigned(f *testing.F) {
	valid := poolReq(`{"Limit":5}`)
	f.Add("POST", "/?"+poolQuery, valid.Header.Get("Authorization"), testNow.Format(dateLayout), jsonCT, hashHex([]byte(`{"Limit":5}`)), `{"Limit":6}`)
	f.Add("GET", "/?"+numQuery+"&NumberList.1=1", "HMAC-SHA256 Credential=a/b/c/d/request, SignedHeaders=host;x-date, Signature=00", "20250605T073515Z", "", "", "")
	f.Add("POST", "/?Action=x", "HMAC-SHA256 ,,,=", "x", "application/x-www-form-urlencoded", "", "a=%zz")
	f.Add("DELETE", "/%2e%2e/?%", "", "", "text/plain", "", "\x00")
	f.Add("POST", "/", "HMAC-SHA256 Credential="+testAK+"/20250605/cn-beijing/vms/request, SignedHeaders=host;x-date, Signature=", "20250605T073515Z", jsonCT, "", `{}`)
	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, target, authz, xdate, ctype, sha, body string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		r, err := http.NewRequest(method, "http://"+testHost+target, strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.RequestURI = target
		for k, v := range map[string]string{"Authorization": authz, "X-Date": xdate, "Content-Type": ctype, "X-Content-Sha256": sha} {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		checkEnvelope(t, w)
		if w.Code < 300 {
			t.Fatalf("an unsigned request got %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzSignedParams signs arbitrary queries and bodies correctly, so the
// fuzzer reaches parameter parsing: the server must never panic, and must
// answer either a well-formed page or one of its codes.
func FuzzSignedParams(f *testing.F) {
	f.Add(poolQuery, jsonCT, `{"Limit":5,"Offset":"3","NumberPoolName":"营销"}`)
	f.Add(numQuery, jsonCT, `{"NumberList":["1","2"],"NumberTypeCode":0,"NumberStatusCode":"1"}`)
	f.Add(numQuery+"&NumberList.2=2&NumberList.1=1&Limit=3", "", "")
	f.Add(poolQuery, "application/x-www-form-urlencoded", "ServiceType=200&Limit=-1")
	f.Add(numQuery, jsonCT, `{"NumberList":"1,,2, 3","Limit":1e3}`)
	f.Add(poolQuery, jsonCT, `{"ServiceType":[],"SubServiceType":{}}`)
	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, query, ctype, body string) {
		method := "POST"
		if ctype == "" {
			method = "GET"
		}
		r, err := http.NewRequest(method, "http://"+testHost+"/?"+query, strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		r.Header.Set("X-Date", testNow.Format(dateLayout))
		creds().Sign(r)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		a := checkEnvelope(t, w)
		if a.ResponseMetadata.Error == nil {
			var p struct {
				Total, Limit, Offset int
				Records              []json.RawMessage
			}
			if err := json.Unmarshal(a.Result, &p); err != nil || p.Total < 0 || p.Limit < 1 || p.Offset < 0 || len(p.Records) > p.Limit || p.Records == nil {
				t.Fatalf("malformed page %s (%v)", a.Result, err)
			}
		}
	})
}
