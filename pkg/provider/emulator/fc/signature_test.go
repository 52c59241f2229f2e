package fc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
)

// The fixed example of Alibaba Cloud's "V3版本请求体&签名机制": ECS
// RunInstances with its parameters in the query and an empty body.
const (
	exampleID        = "YourAccessKeyId"
	exampleSecret    = "YourAccessKeySecret"
	exampleURL       = "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
	exampleDate      = "2023-10-26T10:22:32Z"
	exampleNonce     = "3156853299f313e23d1673dc12e1703d"
	exampleSignature = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	// exampleHashedRequest is the published SHA-256 of the canonical request.
	exampleHashedRequest = "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
)

func exampleVerifier() *verifier {
	return &verifier{
		keys:   map[string]key{exampleID: {secret: exampleSecret}},
		now:    func() time.Time { return time.Date(2023, 10, 26, 10, 22, 32, 0, time.UTC) },
		nonces: map[string]time.Time{},
	}
}

func exampleRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, exampleURL, nil)
	r.Host = "ecs.cn-shanghai.aliyuncs.com"
	r.Header.Set("x-acs-action", "RunInstances")
	r.Header.Set("x-acs-version", "2014-05-26")
	r.Header.Set("x-acs-date", exampleDate)
	r.Header.Set("x-acs-signature-nonce", exampleNonce)
	r.Header.Set("x-acs-content-sha256", hashHex(nil))
	r.Header.Set("Authorization", algorithm+" Credential="+exampleID+
		",SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="+exampleSignature)
	return r
}

func TestPublishedExample(t *testing.T) {
	signed := strings.Split("host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version", ";")
	if got := hashHex([]byte(canonicalRequest(exampleRequest(), signed, hashHex(nil)))); got != exampleHashedRequest {
		t.Fatalf("hashed canonical request %s, published %s", got, exampleHashedRequest)
	}
	if _, err := exampleVerifier().verify(exampleRequest(), nil); err != nil {
		t.Fatalf("the published example is refused: %v", err)
	}

	tampered := map[string]func(r *http.Request){
		"query": func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "cn-shanghai", "cn-beijing", 1)
		},
		"host":   func(r *http.Request) { r.Host = "ecs.cn-beijing.aliyuncs.com" },
		"method": func(r *http.Request) { r.Method = http.MethodPut },
		"path":   func(r *http.Request) { r.URL.Path = "/v2" },
		"action": func(r *http.Request) { r.Header.Set("x-acs-action", "DeleteInstances") },
		"signature": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "0656", "1656", 1))
		},
	}
	for name, mutate := range tampered {
		t.Run(name, func(t *testing.T) {
			r := exampleRequest()
			mutate(r)
			if _, err := exampleVerifier().verify(r, nil); err == nil || err.code != "SignatureNotMatch" {
				t.Fatalf("tampered %s: got %v, want SignatureNotMatch", name, err)
			}
		})
	}
	t.Run("body", func(t *testing.T) {
		if _, err := exampleVerifier().verify(exampleRequest(), []byte("x")); err == nil || err.code != "SignatureNotMatch" {
			t.Fatalf("a body the signer did not hash: got %v", err)
		}
	})
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(v *verifier, r *http.Request)
		status int
		code   string
	}{
		{"no Authorization", func(_ *verifier, r *http.Request) { r.Header.Del("Authorization") }, 403, "AccessDenied"},
		{"another algorithm", func(_ *verifier, r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), algorithm, "ACS3-HMAC-SM3", 1))
		}, 400, "InvalidArgument"},
		{"no date", func(_ *verifier, r *http.Request) { r.Header.Del("x-acs-date") }, 400, "MissingRequiredHeader"},
		{"no nonce", func(_ *verifier, r *http.Request) { r.Header.Del("x-acs-signature-nonce") }, 400, "MissingRequiredHeader"},
		{"an unsigned x-acs header", func(_ *verifier, r *http.Request) { r.Header.Set("x-acs-extra", "1") }, 403, "SignatureNotMatch"},
		{"date 16 minutes old", func(v *verifier, _ *http.Request) {
			v.now = func() time.Time { return time.Date(2023, 10, 26, 10, 38, 33, 0, time.UTC) }
		}, 403, "AccessDenied"},
		{"date 16 minutes ahead", func(v *verifier, _ *http.Request) {
			v.now = func() time.Time { return time.Date(2023, 10, 26, 10, 6, 31, 0, time.UTC) }
		}, 403, "AccessDenied"},
		{"unknown key", func(v *verifier, _ *http.Request) { v.keys = map[string]key{"other": {secret: exampleSecret}} }, 403, "InvalidAccessKeyID"},
		{"STS key without its token", func(v *verifier, _ *http.Request) {
			v.keys[exampleID] = key{secret: exampleSecret, token: "tok"}
		}, 403, "InvalidAccessKeyID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, r := exampleVerifier(), exampleRequest()
			c.mutate(v, r)
			_, err := v.verify(r, nil)
			if err == nil || err.status != c.status || err.code != c.code {
				t.Fatalf("got %v, want %d %s", err, c.status, c.code)
			}
		})
	}
	t.Run("a nonce twice", func(t *testing.T) {
		v := exampleVerifier()
		if _, err := v.verify(exampleRequest(), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := v.verify(exampleRequest(), nil); err == nil || err.code != "AccessDenied" {
			t.Fatalf("replay: got %v, want AccessDenied", err)
		}
	})
}

// TestDarabonbaSignerAccepted holds the verifier to what darabonba-openapi,
// the signer of Alibaba's generated V3 clients (fc-20230330 among them),
// sends: methods, paths, queries and bodies of every shape, and an STS key.
// A request it signed is refused once replayed, and with its body changed.
func TestDarabonbaSignerAccepted(t *testing.T) {
	v := &verifier{
		keys: map[string]key{
			"ak-test":     {secret: "sk-test"},
			"STS.ak-temp": {secret: "sk-temp", token: "token/with+odd=chars"},
		},
		now:    time.Now,
		nonces: map[string]time.Time{},
	}
	var mu sync.Mutex
	var last *http.Request
	var lastBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last, lastBody = r.Clone(context.Background()), body
		mu.Unlock()
		if _, err := v.verify(r, body); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(err.status)
			_ = json.NewEncoder(w).Encode(map[string]string{"Code": err.code, "Message": err.message, "RequestId": "test"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]bool{"ok": true})
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	type call struct {
		name, method, path, reqBody string
		query                       map[string]string
		headers                     map[string]string
		body                        any
		stream                      []byte
		sts                         bool
	}
	calls := []call{
		{name: "InvokeFunction", method: "POST", path: "/2023-03-30/functions/xnum-buy-worker/invocations",
			query: map[string]string{"qualifier": "LATEST"}, headers: map[string]string{"x-fc-invocation-type": "Async"},
			stream: []byte(`{"type":"xnum.wakeup","orders":[{"orderId":"o-1"}]}`), reqBody: "binary"},
		{name: "GET, odd query values", method: "GET", path: "/2023-03-30/functions",
			query: map[string]string{"prefix": "a b*c~d+e/f=g&h", "name": "中文", "empty": "", "limit.max_x-y": "10"}},
		{name: "root path", method: "GET", path: "/", query: map[string]string{"RegionId": "cn-hangzhou"}},
		{name: "PUT JSON body", method: "PUT", path: "/2023-03-30/functions/fn_1-a/triggers/t.1",
			body: map[string]any{"description": "触发器 * ~ +", "n": 3}, reqBody: "json"},
		{name: "POST form body", method: "POST", path: "/services/a-b_c.d~e/x",
			body: map[string]any{"A": "1 2", "B": "x*y"}, reqBody: "formData"},
		{name: "DELETE", method: "DELETE", path: "/2023-03-30/functions/old"},
		{name: "STS", method: "POST", path: "/2023-03-30/functions/xnum-buy-worker/invocations",
			stream: []byte("drain"), reqBody: "binary", sts: true},
		{name: "big body", method: "POST", path: "/2023-03-30/functions/f/invocations",
			stream: bytes.Repeat([]byte("x"), 100<<10), reqBody: "binary"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			cfg := &openapi.Config{AccessKeyId: dara.String("ak-test"), AccessKeySecret: dara.String("sk-test"),
				Endpoint: dara.String(host), Protocol: dara.String("HTTP")}
			if c.sts {
				cfg.AccessKeyId, cfg.AccessKeySecret = dara.String("STS.ak-temp"), dara.String("sk-temp")
				cfg.SecurityToken = dara.String("token/with+odd=chars")
			}
			client, err := openapi.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := &openapi.OpenApiRequest{Query: map[string]*string{}, Headers: map[string]*string{}, Body: c.body}
			for k, v := range c.query {
				req.Query[k] = dara.String(v)
			}
			for k, v := range c.headers {
				req.Headers[k] = dara.String(v)
			}
			if c.stream != nil {
				req.Stream = bytes.NewReader(c.stream)
			}
			params := &openapi.Params{Action: dara.String("Test"), Version: dara.String("2023-03-30"), Protocol: dara.String("HTTP"),
				Pathname: dara.String(c.path), Method: dara.String(c.method), AuthType: dara.String("AK"), Style: dara.String("ROA"),
				ReqBodyType: dara.String(c.reqBody), BodyType: dara.String("json")}
			if _, err := client.CallApiWithCtx(context.Background(), params, req, &dara.RuntimeOptions{}); err != nil {
				t.Fatalf("darabonba's signed request refused: %v", err)
			}

			mu.Lock()
			r, body := last, lastBody
			mu.Unlock()
			if _, err := v.verify(r, body); err == nil || err.code != "AccessDenied" {
				t.Fatalf("the same request again: got %v, want AccessDenied (nonce used)", err)
			}
			r.Header.Set("x-acs-signature-nonce", "fresh-"+c.name)
			if _, err := v.verify(r, append(body, '!')); err == nil || err.code != "SignatureNotMatch" {
				t.Fatalf("another body: got %v, want SignatureNotMatch", err)
			}
		})
	}
}
