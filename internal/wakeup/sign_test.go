package wakeup

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// TestPublishedExample signs the fixed example of Alibaba Cloud's
// "V3版本请求体&签名机制" (ECS RunInstances, parameters in the query, empty
// body) and expects the published signature.
func TestPublishedExample(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost,
		"https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai", nil)
	sign(r, nil, "RunInstances", "2014-05-26", provider.Credentials{AccessKeyID: "YourAccessKeyId", AccessKeySecret: "YourAccessKeySecret"},
		time.Date(2023, 10, 26, 10, 22, 32, 0, time.UTC), "3156853299f313e23d1673dc12e1703d")
	want := "ACS3-HMAC-SHA256 Credential=YourAccessKeyId," +
		"SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version," +
		"Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	if got := r.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization\n got %s\nwant %s", got, want)
	}
}

// TestSameAsDarabonba signs requests of every shape and holds each
// Authorization to the one darabonba-openapi's signer computes for the same
// request.
func TestSameAsDarabonba(t *testing.T) {
	cases := []struct {
		name, method, url, ctype string
		body                     string
		creds                    provider.Credentials
	}{
		{"InvokeFunction", "POST", "https://1234.cn-hangzhou.fc.aliyuncs.com/2023-03-30/functions/xnum-buy-worker/invocations",
			"application/octet-stream", `{"type":"xnum.wakeup","orders":[{"orderId":"a"}]}`, provider.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}},
		{"qualifier and port", "POST", "http://127.0.0.1:9100/2023-03-30/functions/f_1-2/invocations?qualifier=LATEST",
			"application/octet-stream", "drain", provider.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}},
		{"STS", "POST", "https://1234.cn-hangzhou-internal.fc.aliyuncs.com/2023-03-30/functions/w/invocations",
			"application/octet-stream", "x", provider.Credentials{AccessKeyID: "STS.k", AccessKeySecret: "s", SecurityToken: "t/o+k=en"}},
		{"odd query", "GET", "https://h.example/p?b=x%20y&a=%E4%B8%AD&c=a%2Ab~c&d=&e=%2B%2F%3D",
			"", "", provider.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}},
		{"escaped path", "PUT", "https://h.example/a%20b/c~d/%E4%B8%AD",
			"application/json", `{"k":"中文"}`, provider.Credentials{AccessKeyID: "ak", AccessKeySecret: "sk"}},
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			sign(r, []byte(c.body), "Act", "2023-03-30", c.creds, now, "nonce-1")

			// The same request as darabonba holds it: lower-case header
			// names, the path as sent, the query decoded.
			dr := dara.NewRequest()
			dr.Method = dara.String(c.method)
			dr.Pathname = dara.String(r.URL.EscapedPath())
			dr.Query = map[string]*string{}
			for k, vs := range r.URL.Query() {
				dr.Query[k] = dara.String(vs[0])
			}
			dr.Headers = map[string]*string{"host": dara.String(r.URL.Host)}
			for k := range r.Header {
				if k != "Authorization" {
					dr.Headers[strings.ToLower(k)] = dara.String(r.Header.Get(k))
				}
			}
			want := openapiutil.GetAuthorization(dr, dara.String("ACS3-HMAC-SHA256"),
				dara.String(r.Header.Get("x-acs-content-sha256")), dara.String(c.creds.AccessKeyID), dara.String(c.creds.AccessKeySecret))
			if got := r.Header.Get("Authorization"); got != dara.StringValue(want) {
				t.Fatalf("Authorization\n got %s\nwant %s", got, dara.StringValue(want))
			}
			if c.creds.SecurityToken != "" && (r.Header.Get("x-acs-security-token") != c.creds.SecurityToken ||
				!strings.Contains(r.Header.Get("Authorization"), "x-acs-security-token")) {
				t.Fatalf("the STS token is not sent signed: %v", r.Header)
			}
		})
	}
}

func TestCanonicalQuery(t *testing.T) {
	q, _ := url.ParseQuery("b=2&a=1&a=0&c=x y*~&d=")
	if got, want := canonicalQuery(q), "a=0&a=1&b=2&c=x%20y%2A~&d="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
