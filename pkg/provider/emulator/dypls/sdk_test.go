package dypls

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"
)

// start serves s on a loopback port for the real SDK, with the real clock
// (the SDK stamps requests with time.Now).
func start(t *testing.T, s *Server) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func sdkClient(t *testing.T, id, secret, token string) *dyplsapi.Client {
	t.Helper()
	var (
		c   *dyplsapi.Client
		err error
	)
	if token == "" {
		c, err = dyplsapi.NewClientWithAccessKey("cn-hangzhou", id, secret)
	} else {
		c, err = dyplsapi.NewClientWithStsToken("cn-hangzhou", id, secret, token)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func point(r interface {
	SetDomain(string)
	SetScheme(string)
}, host string) {
	r.SetDomain(host)
	r.SetScheme("http")
}

// The SDK's own client gets correct answers for all four actions.
func TestSDKClient(t *testing.T) {
	s := newTestServer(t, WithClock(time.Now)) // the SDK signs with the real time
	host := start(t, s)
	c := sdkClient(t, DefaultAccessKeyID, DefaultAccessKeySecret, "")

	rq := dyplsapi.CreateQuerySecretNoRemainRequest()
	point(rq, host)
	rq.SpecId = requests.NewInteger(1)
	rq.City = "杭州"
	rr, err := c.QuerySecretNoRemain(rq)
	if err != nil || rr.Code != "OK" || rr.SecretRemainDTO.Amount != countSeed(1, "杭州", "") || rr.SecretRemainDTO.City != "杭州" {
		t.Fatalf("remain: %v %+v", err, rr)
	}

	rq = dyplsapi.CreateQuerySecretNoRemainRequest()
	point(rq, host)
	rq.SpecId = requests.NewInteger(2)
	rq.City = "全国列表"
	rr, err = c.QuerySecretNoRemain(rq)
	if err != nil || rr.Code != "OK" || len(rr.SecretRemainDTO.RemainDTOList.RemainDTO) != 6 {
		t.Fatalf("全国列表: %v %+v", err, rr)
	}
	var sum int64
	for _, e := range rr.SecretRemainDTO.RemainDTOList.RemainDTO {
		if e.City == "" || e.Amount <= 0 {
			t.Fatalf("全国列表 entry %+v", e)
		}
		sum += e.Amount
	}
	if sum != countSeed(2, "", "") || rr.SecretRemainDTO.Amount != sum {
		t.Fatalf("全国列表 sum %d, Amount %d", sum, rr.SecretRemainDTO.Amount)
	}

	bq := dyplsapi.CreateBuySecretNoRequest()
	point(bq, host)
	bq.PoolKey = DefaultPoolKey
	bq.SpecId = requests.NewInteger(2)
	bq.City = "北京"
	bq.SecretNo = "138"
	bq.DisplayPool = requests.NewBoolean(false)
	br, err := c.BuySecretNo(bq)
	if err != nil || br.Code != "OK" || !strings.HasPrefix(br.SecretBuyInfoDTO.SecretNo, "138") || br.RequestId == "" {
		t.Fatalf("buy: %v %+v", err, br)
	}
	no := br.SecretBuyInfoDTO.SecretNo

	dq := dyplsapi.CreateQuerySecretNoDetailRequest()
	point(dq, host)
	dq.PoolKey = DefaultPoolKey
	dq.SecretNo = no
	dr, err := c.QuerySecretNoDetail(dq)
	if err != nil || dr.Code != "OK" || dr.SecretNoInfoDTO.City != "北京" || dr.SecretNoInfoDTO.Vendor != VendorMobile ||
		len(dr.SecretNoInfoDTO.PurchaseTime) != len(TimeLayout) {
		t.Fatalf("detail: %v %+v", err, dr)
	}

	lq := dyplsapi.CreateReleaseSecretNoRequest()
	point(lq, host)
	lq.PoolKey = DefaultPoolKey
	lq.SecretNo = no
	lr, err := c.ReleaseSecretNo(lq)
	if err != nil || lr.Code != "OK" {
		t.Fatalf("release: %v %+v", err, lr)
	}

	// A business refusal is HTTP 200: the SDK returns no error, only a Code.
	dq = dyplsapi.CreateQuerySecretNoDetailRequest()
	point(dq, host)
	dq.PoolKey = DefaultPoolKey
	dq.SecretNo = no
	dr, err = c.QuerySecretNoDetail(dq)
	if err != nil || dr.Code != "isv.NO_NOT_EXIST" || dr.RequestId == "" {
		t.Fatalf("detail after release: %v %+v", err, dr)
	}
}

func TestSDKClientRefusals(t *testing.T) {
	s := newTestServer(t, WithClock(time.Now), WithKey(DefaultAccessKeyID, DefaultAccessKeySecret), WithSTSToken("STS.k", "sts-secret", "tok"))
	host := start(t, s)
	tests := []struct {
		name              string
		id, secret, token string
		status            int
		code              string
	}{
		{"sts ok", "STS.k", "sts-secret", "tok", 200, "OK"},
		{"unknown key", "nobody", "x", "", 404, "InvalidAccessKeyId.NotFound"},
		{"wrong secret", DefaultAccessKeyID, "wrong", "", 400, "SignatureDoesNotMatch"},
		{"wrong token", "STS.k", "sts-secret", "forged", 400, "InvalidSecurityToken.Malformed"},
		{"sts key without token", "STS.k", "sts-secret", "", 400, "MissingSecurityToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sdkClient(t, tt.id, tt.secret, tt.token)
			rq := dyplsapi.CreateQuerySecretNoRemainRequest()
			point(rq, host)
			rq.SpecId = requests.NewInteger(1)
			rq.City = "杭州"
			rr, err := c.QuerySecretNoRemain(rq)
			if tt.code == "OK" {
				if err != nil || rr.Code != "OK" {
					t.Fatalf("%v %+v", err, rr)
				}
				return
			}
			var se *sdkerrors.ServerError
			if !errors.As(err, &se) || se.HttpStatus() != tt.status || se.ErrorCode() != tt.code || se.RequestId() == "" {
				t.Fatalf("got %v, want ServerError %d %s", err, tt.status, tt.code)
			}
		})
	}
}

// recorder keeps the requests the SDK sends.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// What the SDK puts on the wire is exactly what Sign computes: every query
// parameter, SignatureType="" and SecurityToken included.
func TestSignMatchesSDK(t *testing.T) {
	s := newTestServer(t, WithClock(time.Now), WithSTSToken("STS.k", "sts-secret", "tok+/="))
	host := start(t, s)
	c := sdkClient(t, "STS.k", "sts-secret", "tok+/=")
	rec := &recorder{}
	c.SetTransport(rec)
	bq := dyplsapi.CreateBuySecretNoRequest()
	point(bq, host)
	bq.PoolKey = DefaultPoolKey
	bq.SpecId = requests.NewInteger(1)
	bq.City = "杭州"
	bq.SecretNo = "170"
	br, err := c.BuySecretNo(bq)
	if err != nil || br.Code != "OK" {
		t.Fatalf("buy: %v %+v", err, br)
	}
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests sent", len(rec.reqs))
	}
	hr := rec.reqs[0]
	q := hr.URL.Query()
	for _, p := range []string{"SignatureType", "SecurityToken", "RegionId", "SignatureNonce"} {
		if !q.Has(p) {
			t.Errorf("the SDK did not send %s", p)
		}
	}
	if hr.Method != http.MethodPost || q.Get("Format") != "JSON" {
		t.Errorf("method %s, Format %s", hr.Method, q.Get("Format"))
	}
	if got := Sign(hr.Method, q, "sts-secret"); got != q.Get("Signature") {
		t.Fatalf("Sign = %s, SDK sent %s", got, q.Get("Signature"))
	}
	// And a changed value breaks it.
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("City", "北京")
	if Sign(hr.Method, q2, "sts-secret") == q.Get("Signature") {
		t.Fatal("a tampered request signs the same")
	}
}
