package aliyun

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// A buy the cloud answered with an error after it sold the number must not
// read as "nothing bought": every answer outside the allowlist of refusals
// is in doubt, whatever its layer or status.
func TestBuyErrorAfterTheWorkIsInDoubt(t *testing.T) {
	codes := []string{
		"InternalError", "ServiceUnavailable", "UnknownError", "ServiceTimeout", // gateway 5xx
		"isp.SYSTEM_ERROR", "isp.UNKNOWN_ERR_CODE", "isp.GATEWAY_ERROR", "isv.PARTNER_NOT_EXIST", // HTTP 200
		"isv.SOMETHING_NEW", "Odd.Code", // codes nobody documented
	}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t)
			e.faults.Set("BuySecretNo", fault.Fault{ErrorAfterCode: code})
			_, err := c.Buy(context.Background(), provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
			pe := asError(t, err, provider.ErrInDoubt)
			if pe.Code != code || pe.RequestID == "" {
				t.Errorf("the in-doubt error keeps the cloud's code and request id: %+v", pe)
			}
			if n := len(e.emu.Purchases()); n != 1 {
				t.Fatalf("the emulator sold %d", n)
			}
		})
	}
}

// Exactly the documented refusals-before-acting read as "nothing bought",
// each with its kind; every other code of the table is in doubt for a buy
// and keeps its kind for a query.
func TestBuyRefusalAllowlist(t *testing.T) {
	e := newEnv(t)
	buyer := e.client(t)
	querier := e.client(t, func(c *Config) { c.QueryAttempts = 1 })
	ctx := context.Background()
	for code, kind := range codeKinds {
		t.Run(code, func(t *testing.T) {
			e.faults.Set("BuySecretNo", fault.Fault{ErrorCode: code})
			defer e.faults.Set("BuySecretNo", fault.Fault{})
			want := provider.ErrInDoubt
			if refusedBeforeActing(code) {
				want = kind
			}
			_, err := buyer.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
			asError(t, err, want)

			e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: code})
			defer e.faults.Set("QuerySecretNoRemain", fault.Fault{})
			_, err = querier.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1})
			asError(t, err, kind)
		})
	}
	for _, code := range []string{"Throttling", "Throttling.User", "isv.FLOW_LIMIT", "SignatureDoesNotMatch", "Forbidden.RAM",
		"MissingPoolKey", "isv.NO_AVAILABLE_NUMBER", "isv.POOLKEY_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL"} {
		if !refusedBeforeActing(code) {
			t.Errorf("%s is a documented refusal before acting", code)
		}
	}
	for _, code := range []string{"InternalError", "isp.SYSTEM_ERROR", "Throttling.New", "isv.NEW", "", "OK"} {
		if refusedBeforeActing(code) {
			t.Errorf("%s is not on the allowlist", code)
		}
	}
}

// One unreadable answer of a query (a proxy's page, a truncated body) is
// retried like an unavailable cloud, not taken as the answer.
func TestQueryRetriesAnUnreadableAnswer(t *testing.T) {
	for _, body := range []string{"<html>502 Bad Gateway</html>", `{"RequestId":"R1","Code":"OK","SecretRemainDTO":{"Amo`} {
		e := newEnv(t)
		target, _ := url.Parse(e.http.URL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		var calls atomic.Int32
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				io.WriteString(w, body)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(hs.Close)
		c := e.client(t, func(cfg *Config) { cfg.Endpoint = hs.URL })
		got, err := c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1})
		if err != nil || got.Amount != seedCount(1, "杭州", "") || calls.Load() != 2 {
			t.Fatalf("after %q: %+v, %v, %d calls", body, got, err, calls.Load())
		}
	}
}
