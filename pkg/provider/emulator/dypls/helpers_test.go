package dypls

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fixedNow is the emulator clock of the handler tests.
var fixedNow = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

var nonceSeq atomic.Int64

var xmlField = regexp.MustCompile(`<(\w+)>([^<]*)</(?:\w+)>`)

// req is an RPC request under construction: every parameter, signed at the
// end with secret unless the test tampers with it.
type req struct {
	method string
	params url.Values
	secret string
	inBody bool // send the parameters as a form body (POST)
}

// newReq returns a well-formed request for action by the default key,
// stamped at fixedNow.
func newReq(action string, kv ...string) *req {
	p := url.Values{}
	p.Set("Action", action)
	p.Set("Version", Version)
	p.Set("Format", "JSON")
	p.Set("AccessKeyId", DefaultAccessKeyID)
	p.Set("SignatureMethod", "HMAC-SHA1")
	p.Set("SignatureVersion", "1.0")
	p.Set("SignatureType", "")
	p.Set("SignatureNonce", fmt.Sprintf("nonce-%d", nonceSeq.Add(1)))
	p.Set("Timestamp", fixedNow.Format("2006-01-02T15:04:05Z"))
	p.Set("RegionId", "cn-hangzhou")
	for i := 0; i+1 < len(kv); i += 2 {
		p.Set(kv[i], kv[i+1])
	}
	return &req{method: http.MethodPost, params: p, secret: DefaultAccessKeySecret}
}

func (r *req) set(k, v string) *req { r.params.Set(k, v); return r }
func (r *req) del(k string) *req    { r.params.Del(k); return r }
func (r *req) key(id, secret string) *req {
	r.params.Set("AccessKeyId", id)
	r.secret = secret
	return r
}

// signed signs the parameters as they are now.
func (r *req) signed() *req {
	r.params.Set("Signature", Sign(r.method, r.params, r.secret))
	return r
}

func (r *req) httpRequest() *http.Request {
	if r.inBody {
		hr := httptest.NewRequest(r.method, "/", strings.NewReader(r.params.Encode()))
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return hr
	}
	return httptest.NewRequest(r.method, "/?"+r.params.Encode(), nil)
}

// answer is a decoded answer of either layer.
type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) code() string {
	c, _ := a.body["Code"].(string)
	return c
}

func serve(t *testing.T, s *Server, r *req) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r.httpRequest())
	a := answer{status: rec.Code, raw: rec.Body.String()}
	switch ct := rec.Header().Get("Content-Type"); {
	case strings.HasPrefix(ct, "application/json"):
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, a.raw)
		}
	case strings.HasPrefix(ct, "text/xml"):
		// The flat fields of an XML answer are enough for the tests.
		a.body = map[string]any{}
		for _, m := range xmlField.FindAllStringSubmatch(a.raw, -1) {
			if _, seen := a.body[m[1]]; !seen {
				a.body[m[1]] = m[2]
			}
		}
	case strings.HasPrefix(ct, "text/html"):
		// A garbled answer (fault.Garble): the raw text is the answer.
	default:
		t.Fatalf("answer of type %q: %s", ct, a.raw)
	}
	return a
}

func newTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(append([]Option{WithClock(func() time.Time { return fixedNow })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dto returns the object under name in a body.
func dto(t *testing.T, body map[string]any, name string) map[string]any {
	t.Helper()
	m, ok := body[name].(map[string]any)
	if !ok {
		t.Fatalf("no %s in %v", name, body)
	}
	return m
}
