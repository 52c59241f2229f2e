package dypls

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

func TestStatusOf(t *testing.T) {
	for code, g := range gatewayCodes {
		if got := StatusOf(code); got != g.status || got < 400 {
			t.Errorf("StatusOf(%s) = %d, want %d", code, got, g.status)
		}
	}
	for code := range businessMessages {
		if got := StatusOf(code); got != 200 {
			t.Errorf("StatusOf(%s) = %d, want 200", code, got)
		}
	}
	for code, want := range map[string]int{"MissingPoolKey": 400, "isv.SOMETHING_NEW": 200, "Weird.Code": 400} {
		if got := StatusOf(code); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestFaultCodesInTheirLayer(t *testing.T) {
	codes := []string{"Throttling.User", "ServiceUnavailable", "InternalError", "Forbidden.RAM", "isp.SYSTEM_ERROR", "isv.FLOW_LIMIT", "isv.ACCOUNT_ABNORMAL"}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			set := fault.NewSet(1)
			set.Set("BuySecretNo", fault.Fault{ErrorCode: code})
			s := newTestServer(t, WithFaults(set))
			a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
			if a.status != StatusOf(code) || a.code() != code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.code(), StatusOf(code), code)
			}
			if _, gateway := a.body["HostId"]; gateway != (a.status != 200) {
				t.Errorf("layer: status %d with HostId %v", a.status, gateway)
			}
			if len(s.Purchases()) != 0 {
				t.Error("a refused buy bought")
			}
			if s.Calls("BuySecretNo") != 1 {
				t.Errorf("Calls = %d", s.Calls("BuySecretNo"))
			}
			// Other actions are untouched.
			if a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed()); a.code() != "OK" {
				t.Errorf("remain: %s", a.raw)
			}
		})
	}
}

// error-after does the work, then answers the code in its layer: a buy sold
// a number although the answer is an error.
func TestFaultErrorAfterWork(t *testing.T) {
	for _, code := range []string{"InternalError", "ServiceTimeout", "isp.SYSTEM_ERROR"} {
		t.Run(code, func(t *testing.T) {
			set := fault.NewSet(1)
			set.Set("BuySecretNo", fault.Fault{ErrorAfterCode: code})
			s := newTestServer(t, WithFaults(set))
			a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
			if a.status != StatusOf(code) || a.code() != code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.code(), StatusOf(code), code)
			}
			if len(s.Purchases()) != 1 {
				t.Fatalf("purchases = %d, want 1: the work is done before the error", len(s.Purchases()))
			}
		})
	}
}

// garble does the work, then answers 200 with a page that is not the
// cloud's.
func TestFaultGarble(t *testing.T) {
	set := fault.NewSet(1)
	set.Set("BuySecretNo", fault.Fault{GarbleRate: 1})
	s := newTestServer(t, WithFaults(set))
	a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
	if a.status != 200 || !strings.Contains(a.raw, "502 Bad Gateway") {
		t.Fatalf("got %d %s", a.status, a.raw)
	}
	if len(s.Purchases()) != 1 {
		t.Fatalf("purchases = %d, want 1", len(s.Purchases()))
	}
}

func TestFaultThrottle(t *testing.T) {
	set := fault.NewSet(1)
	set.Set("QuerySecretNoRemain", fault.Fault{QPS: 0.001, Burst: 1})
	s := newTestServer(t, WithFaults(set))
	if a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed()); a.code() != "OK" {
		t.Fatalf("first: %s", a.raw)
	}
	a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed())
	if a.status != 400 || a.code() != ThrottlingCode {
		t.Fatalf("second: %d %s", a.status, a.raw)
	}
	if s.Calls("QuerySecretNoRemain") != 2 {
		t.Fatalf("Calls = %d", s.Calls("QuerySecretNoRemain"))
	}
}

// A cut buy happened: the number is sold although no answer left.
func TestFaultCut(t *testing.T) {
	set := fault.NewSet(1)
	set.Set("BuySecretNo", fault.Fault{CutRate: 1})
	s := newTestServer(t, WithFaults(set))
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed()
	resp, err := http.Post(srv.URL+"/?"+r.params.Encode(), "", nil)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a cut call answered %s", resp.Status)
	}
	p := s.Purchases()
	if len(p) != 1 || p[0].City != "杭州" {
		t.Fatalf("purchases = %+v", p)
	}
	if len(s.Reports()) != 1 {
		t.Fatalf("reports = %+v", s.Reports())
	}
}

// A client that gives up during the latency leaves nothing bought.
func TestFaultLatencyClientGone(t *testing.T) {
	set := fault.NewSet(1)
	set.Set("BuySecretNo", fault.Fault{Latency: time.Minute})
	s := newTestServer(t, WithFaults(set))
	srv := httptest.NewServer(s)
	r := newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed()
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/?"+r.params.Encode(), nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hr)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Calls("BuySecretNo") == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	srv.Close() // waits for the handler, which must not wait out the minute
	if p := s.Purchases(); len(p) != 0 {
		t.Fatalf("purchases = %+v", p)
	}
}

func TestFaultLatencyThenAnswer(t *testing.T) {
	set := fault.NewSet(1)
	set.Set("QuerySecretNoRemain", fault.Fault{Latency: time.Millisecond})
	s := newTestServer(t, WithFaults(set))
	if a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed()); a.code() != "OK" {
		t.Fatalf("%s", a.raw)
	}
}

func TestLoggerNeverLogsSecrets(t *testing.T) {
	var buf strings.Builder
	s := newTestServer(t, WithKey("k", "the-secret"), WithSTSToken("STS.k", "sts-secret", "the-token"), WithLogger(newTextLogger(&buf)))
	r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").key("STS.k", "sts-secret").set("SecurityToken", "the-token").signed()
	serve(t, s, r)
	bad := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").key("STS.k", "wrong").set("SecurityToken", "the-token").signed()
	serve(t, s, bad)
	out := buf.String()
	if !strings.Contains(out, "SignatureDoesNotMatch") || !strings.Contains(out, "requestId") {
		t.Fatalf("log lacks the calls: %s", out)
	}
	for _, secret := range []string{"the-secret", "sts-secret", "the-token", r.params.Get("Signature"), bad.params.Get("Signature")} {
		if strings.Contains(out, secret) {
			t.Fatalf("log holds %q: %s", secret, out)
		}
	}
}
