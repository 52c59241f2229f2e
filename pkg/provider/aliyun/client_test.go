package aliyun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

func seedCount(spec int, city, prefix string) int64 {
	var n int64
	for _, x := range dypls.DefaultNumbers() {
		if x.SpecID == spec && (city == "" || x.City == city) && strings.HasPrefix(x.SecretNo, prefix) {
			n++
		}
	}
	return n
}

func TestRemain(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	tests := []struct {
		q    provider.RemainQuery
		want int64
	}{
		{provider.RemainQuery{City: "杭州", SpecID: 1}, seedCount(1, "杭州", "")},
		{provider.RemainQuery{City: "杭州", SpecID: 2, Prefix: "130"}, seedCount(2, "杭州", "130")},
		{provider.RemainQuery{City: "拉萨", SpecID: 2}, 0},
		{provider.RemainQuery{City: "全国", SpecID: 2}, seedCount(2, "", "")},
		{provider.RemainQuery{City: "全国通用", SpecID: 3}, seedCount(3, "", "")},
	}
	for _, tt := range tests {
		got, err := c.Remain(ctx, tt.q)
		if err != nil {
			t.Fatalf("Remain(%+v): %v", tt.q, err)
		}
		want := provider.RemainResult{City: tt.q.City, SpecID: tt.q.SpecID, Prefix: tt.q.Prefix, Amount: tt.want}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Remain(%+v) = %+v, want %+v", tt.q, got, want)
		}
	}

	got, err := c.Remain(ctx, provider.RemainQuery{City: "全国列表", SpecID: 1})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, ca := range got.Cities {
		if ca.Amount != seedCount(1, ca.City, "") || ca.Amount == 0 {
			t.Errorf("%s: %d, want %d", ca.City, ca.Amount, seedCount(1, ca.City, ""))
		}
		sum += ca.Amount
	}
	if len(got.Cities) != 5 || got.Amount != sum || sum != seedCount(1, "", "") {
		t.Fatalf("全国列表 = %+v (sum %d)", got, sum)
	}
}

// Every request, with the configured key or a call's own, names the
// configured region (the SDK clients are made without one).
func TestRegionSent(t *testing.T) {
	e := newEnv(t)
	var regions sync.Map
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		regions.Store(r.Form.Get("Action")+" "+r.Form.Get("AccessKeyId"), r.Form.Get("RegionId"))
		e.emu.ServeHTTP(w, r)
	}))
	defer hs.Close()
	c, err := New(Config{AccessKeyID: keyID, AccessKeySecret: keySecret, Endpoint: hs.URL, Region: "cn-shanghai"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := provider.ContextWithCredentials(context.Background(), provider.Credentials{AccessKeyID: ctxID, AccessKeySecret: ctxSecret, SecurityToken: ctxToken})
	if _, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"QuerySecretNoRemain " + keyID, "QuerySecretNoRemain " + ctxID} {
		if r, _ := regions.Load(k); r != "cn-shanghai" {
			t.Errorf("%s: RegionId %v, want cn-shanghai", k, r)
		}
	}
}

func TestBuyDetailRelease(t *testing.T) {
	e := newEnv(t, dypls.WithPool("FC200"))
	c := e.client(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	res, err := c.Buy(ctx, provider.BuyRequest{PoolKey: "FC200", City: "上海", SpecID: 2, Prefix: "13", DisplayPool: true})
	if err != nil {
		t.Fatal(err)
	}
	p := e.emu.Purchases()
	if len(p) != 1 || p[0].SecretNo != res.SecretNo || p[0].RequestID != res.RequestID || p[0].PoolKey != "FC200" ||
		p[0].City != "上海" || !p[0].DisplayPool || !strings.HasPrefix(res.SecretNo, "13") {
		t.Fatalf("bought %+v, emulator %+v", res, p)
	}

	d, err := c.NumberDetail(ctx, "FC200", res.SecretNo)
	if err != nil {
		t.Fatal(err)
	}
	if d.SecretNo != res.SecretNo || d.PoolKey != "FC200" || d.City != "上海" || d.Province != "上海" || d.Vendor == 0 ||
		d.Status != provider.NumberUnbound || d.RequestID == "" ||
		d.PurchaseTime.Before(before.Truncate(time.Second)) || d.PurchaseTime.After(time.Now()) {
		t.Fatalf("detail = %+v", d)
	}
	if _, off := d.PurchaseTime.Zone(); off != 8*3600 {
		t.Errorf("PurchaseTime zone offset %d", off)
	}

	if err := c.Release(ctx, "FC200", res.SecretNo); err != nil {
		t.Fatal(err)
	}
	_, err = c.NumberDetail(ctx, "FC200", res.SecretNo)
	pe := asError(t, err, provider.ErrNotFound)
	if pe.Code != "isv.NO_NOT_EXIST" || pe.Status != 200 || pe.RequestID == "" || pe.Op != "QuerySecretNoDetail" {
		t.Fatalf("detail after release: %+v", pe)
	}
	err = c.Release(ctx, "FC200", res.SecretNo)
	asError(t, err, provider.ErrNotFound)
	if n := e.emu.Calls("ReleaseSecretNo"); n != 2 {
		t.Fatalf("ReleaseSecretNo calls = %d, want 2", n)
	}
}

func TestBusinessRefusalsMapped(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: "FC-unknown", City: "杭州", SpecID: 1})
	if pe := asError(t, err, provider.ErrNotFound); pe.Code != "isv.POOLKEY_NOT_EXISTS" {
		t.Fatal(pe)
	}
	_, err = c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "拉萨", SpecID: 1})
	if pe := asError(t, err, provider.ErrInsufficientInventory); pe.Code != "isv.NO_AVAILABLE_NUMBER" || pe.Op != "BuySecretNo" {
		t.Fatal(pe)
	}
	if n := e.emu.Calls("BuySecretNo"); n != 2 || len(e.emu.Purchases()) != 0 {
		t.Fatalf("calls %d, purchases %v", n, e.emu.Purchases())
	}
}

// Bad input is refused with the field named, before anything is sent.
func TestValidationBeforeAnyCall(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	calls := []struct {
		field string
		call  func() error
	}{
		{"specId", func() error { _, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 4}); return err }},
		{"city", func() error { _, err := c.Remain(ctx, provider.RemainQuery{SpecID: 1}); return err }},
		{"city", func() error { _, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 3}); return err }},
		{"prefix", func() error {
			_, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1, Prefix: strings.Repeat("1", 19)})
			return err
		}},
		{"poolKey", func() error { _, err := c.Buy(ctx, provider.BuyRequest{City: "杭州", SpecID: 1}); return err }},
		{"city", func() error {
			_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: "FC1", City: "全国", SpecID: 1})
			return err
		}},
		{"prefix", func() error {
			_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: "FC1", City: "杭州", SpecID: 1, Prefix: "13x"})
			return err
		}},
		{"poolKey", func() error { _, err := c.NumberDetail(ctx, "", "13000000000"); return err }},
		{"secretNo", func() error { _, err := c.NumberDetail(ctx, "FC1", ""); return err }},
		{"secretNo", func() error { _, err := c.NumberDetail(ctx, "FC1", "130-0000"); return err }},
		{"poolKey", func() error { return c.Release(ctx, "FC 1", "13000000000") }},
		{"secretNo", func() error { return c.Release(ctx, "FC1", strings.Repeat("1", 21)) }},
	}
	for i, tt := range calls {
		err := tt.call()
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.ErrInvalidParameter || pe.Field != tt.field {
			t.Errorf("%d: got %v, want invalid %s", i, err, tt.field)
		}
	}
	for _, a := range []string{"QuerySecretNoRemain", "BuySecretNo", "QuerySecretNoDetail", "ReleaseSecretNo"} {
		if n := e.emu.Calls(a); n != 0 {
			t.Errorf("%s reached the emulator %d times", a, n)
		}
	}
	if len(e.emu.Stock()) != len(dypls.DefaultNumbers()) {
		t.Error("bad input changed the stock")
	}
}

// Every code of the mapping table, injected by the emulator in the layer the
// cloud uses for it, reaches the caller as its kind, with code, status and
// request id, through a buy (sent once) and through a query.
func TestEveryCodeMapped(t *testing.T) {
	e := newEnv(t)
	buyer := e.client(t)
	querier := e.client(t, func(c *Config) { c.QueryAttempts = 1 })
	ctx := context.Background()
	for code, kind := range codeKinds {
		t.Run(code, func(t *testing.T) {
			e.faults.Set("BuySecretNo", fault.Fault{ErrorCode: code})
			e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: code})
			defer e.faults.Set("BuySecretNo", fault.Fault{})
			defer e.faults.Set("QuerySecretNoRemain", fault.Fault{})
			calls := e.emu.Calls("BuySecretNo")

			want := provider.ErrInDoubt // a buy keeps its kind only on the allowlist (money_test.go)
			if refusedBeforeActing(code) {
				want = kind
			}
			_, err := buyer.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
			pe := asError(t, err, want)
			if pe.Code != code || pe.Status != dypls.StatusOf(code) || pe.RequestID == "" || pe.Op != "BuySecretNo" || pe.Message == "" {
				t.Fatalf("buy: %+v", pe)
			}
			if got := e.emu.Calls("BuySecretNo") - calls; got != 1 {
				t.Fatalf("buy sent %d times", got)
			}

			_, err = querier.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1})
			if pe := asError(t, err, kind); pe.Code != code || pe.Op != "QuerySecretNoRemain" {
				t.Fatalf("remain: %+v", pe)
			}
		})
	}
	if n := len(e.emu.Purchases()); n != 0 {
		t.Fatalf("refused buys bought %d numbers", n)
	}
}

// Codes outside the table fall back by family, then by status.
func TestUnknownCodes(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	tests := []struct {
		code string
		kind provider.Kind
	}{
		{"isv.SOMETHING_NEW", provider.ErrInvalidParameter},
		{"isp.SOMETHING_NEW", provider.ErrUnavailable},
		{"Throttling.Something", provider.ErrThrottled},
		{"InvalidSecurityToken.New", provider.ErrUnauthorized},
		{"MissingPoolKey", provider.ErrInvalidParameter},
		{"Odd.Code", provider.ErrInternal},
	}
	for _, tt := range tests {
		e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: tt.code})
		_, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1})
		if pe := asError(t, err, tt.kind); pe.Code != tt.code {
			t.Fatalf("%s: %+v", tt.code, pe)
		}
		// A buy answered with a code nobody documented may have bought.
		e.faults.Set("BuySecretNo", fault.Fault{ErrorCode: tt.code})
		_, err = c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
		want := provider.ErrInDoubt
		if refusedBeforeActing(tt.code) {
			want = tt.kind
		}
		asError(t, err, want)
	}
	for _, tt := range []struct {
		status int
		kind   provider.Kind
	}{{429, provider.ErrThrottled}, {403, provider.ErrUnauthorized}, {502, provider.ErrUnavailable}, {418, provider.ErrInternal}} {
		if k := kindOf("", tt.status); k != tt.kind {
			t.Errorf("kindOf(\"\", %d) = %s, want %s", tt.status, k, tt.kind)
		}
	}
}

// One Buy call reaches the cloud exactly once, whatever goes wrong.
func TestBuyNeverResent(t *testing.T) {
	tests := []struct {
		name    string
		fault   fault.Fault
		timeout time.Duration
		kind    provider.Kind
		bought  int
	}{
		{"500", fault.Fault{ErrorCode: "InternalError"}, 0, provider.ErrInDoubt, 0},
		{"503", fault.Fault{ErrorCode: "ServiceUnavailable"}, 0, provider.ErrInDoubt, 0},
		{"500 after the work", fault.Fault{ErrorAfterCode: "InternalError"}, 0, provider.ErrInDoubt, 1},
		{"throttled", fault.Fault{QPS: 0.001, Burst: 1}, 0, provider.ErrThrottled, 1},
		{"system error", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"}, 0, provider.ErrInDoubt, 0},
		{"timeout", fault.Fault{Latency: time.Minute}, 200 * time.Millisecond, provider.ErrInDoubt, 0},
		{"cut", fault.Fault{CutRate: 1}, 0, provider.ErrInDoubt, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, func(cfg *Config) { cfg.ReadTimeout = tt.timeout })
			e.faults.Set("BuySecretNo", tt.fault)
			ctx := context.Background()
			req := provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1}
			sends := 1
			if tt.name == "throttled" {
				// The bucket's one token goes to a first, successful buy.
				if _, err := c.Buy(ctx, req); err != nil {
					t.Fatal(err)
				}
				sends = 2
			}
			_, err := c.Buy(ctx, req)
			pe := asError(t, err, tt.kind)
			e.settle()
			if n := e.emu.Calls("BuySecretNo"); n != sends {
				t.Fatalf("BuySecretNo reached the emulator %d times, want %d", n, sends)
			}
			if n := len(e.emu.Purchases()); n != tt.bought {
				t.Fatalf("purchases = %d, want %d", n, tt.bought)
			}
			noSecrets(t, "error", errorTexts(err)...)
			if tt.kind == provider.ErrInDoubt && pe.Code == "" && pe.Err == nil {
				t.Fatalf("in doubt without the transport cause: %+v", pe)
			}
		})
	}
}

// A context deadline shorter than ReadTimeout bounds the call; a buy that
// ran out of time after sending is in doubt, and the emulator shows whether
// it bought.
func TestContextDeadline(t *testing.T) {
	e := newEnv(t)
	c := e.client(t) // ReadTimeout 10s
	e.faults.Set("BuySecretNo", fault.Fault{Latency: time.Minute})
	e.faults.Set("QuerySecretNoRemain", fault.Fault{Latency: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	asError(t, err, provider.ErrInDoubt)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = c.Remain(ctx2, provider.RemainQuery{City: "杭州", SpecID: 1})
	asError(t, err, provider.ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("remain error does not match DeadlineExceeded: %v", err)
	}
	e.settle()
	if n := len(e.emu.Purchases()); n != 0 {
		t.Fatalf("purchases = %d", n)
	}
	if n := e.emu.Calls("QuerySecretNoRemain"); n != 1 {
		t.Fatalf("a query with no time left was resent: %d calls", n)
	}
}

func TestCancelledBeforeSending(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	asError(t, err, provider.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	_, err = c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1})
	asError(t, err, provider.ErrUnavailable)
	if e.emu.Calls("BuySecretNo")+e.emu.Calls("QuerySecretNoRemain") != 0 {
		t.Fatal("a cancelled call was sent")
	}
}

// A buy already sent is not abandoned when its context is cancelled: it
// waits for the answer, so the number bought is not left in doubt.
func TestBuySentSurvivesCancel(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	e.faults.Set("BuySecretNo", fault.Fault{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for e.emu.Calls("BuySecretNo") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	if err != nil {
		t.Fatalf("buy: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the context was not cancelled during the buy")
	}
	if p := e.emu.Purchases(); len(p) != 1 || p[0].SecretNo != res.SecretNo {
		t.Fatalf("purchases %+v, result %+v", p, res)
	}
}

// A query cancelled in flight returns at once instead.
func TestQueryCancelledInFlight(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	e.faults.Set("QuerySecretNoRemain", fault.Fault{Latency: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.emu.Calls("QuerySecretNoRemain") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1})
	asError(t, err, provider.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

// Nothing listens: the buy was never sent, so nothing can have been bought.
func TestBuyNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(Config{AccessKeyID: keyID, AccessKeySecret: keySecret, SecurityToken: "", Endpoint: "http://" + addr, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := provider.ContextWithCredentials(context.Background(), provider.Credentials{AccessKeyID: ctxID, AccessKeySecret: ctxSecret, SecurityToken: ctxToken})
	_, err = c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	pe := asError(t, err, provider.ErrUnavailable)
	if pe.Err == nil || pe.Message != "not sent" {
		t.Fatalf("%+v", pe)
	}
	noSecrets(t, "error", errorTexts(err)...)
	if !strings.Contains(err.Error(), `"http://`+addr+`/?Action=BuySecretNo"`) || strings.Contains(err.Error(), "Signature") || strings.Contains(err.Error(), "AccessKeyId") {
		t.Fatalf("expected the URL cut to host and action in %v", err)
	}
}

func TestQueryRetryBounded(t *testing.T) {
	tests := []struct {
		name  string
		fault fault.Fault
		kind  provider.Kind
		calls int
	}{
		{"503", fault.Fault{ErrorCode: "ServiceUnavailable"}, provider.ErrUnavailable, 3},
		{"throttled", fault.Fault{ErrorCode: "Throttling.User"}, provider.ErrThrottled, 3},
		{"flow limit", fault.Fault{ErrorCode: "isv.FLOW_LIMIT"}, provider.ErrThrottled, 3},
		{"system error", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"}, provider.ErrUnavailable, 3},
		{"cut", fault.Fault{CutRate: 1}, provider.ErrUnavailable, 3},
		{"invalid", fault.Fault{ErrorCode: "isv.INVALID_PARAMETERS"}, provider.ErrInvalidParameter, 1},
		{"unauthorized", fault.Fault{ErrorCode: "Forbidden.RAM"}, provider.ErrUnauthorized, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t)
			e.faults.Set("QuerySecretNoRemain", tt.fault)
			e.faults.Set("QuerySecretNoDetail", tt.fault)
			_, err := c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1})
			asError(t, err, tt.kind)
			_, err = c.NumberDetail(context.Background(), dypls.DefaultPoolKey, "17000100000")
			asError(t, err, tt.kind)
			e.settle()
			if n := e.emu.Calls("QuerySecretNoRemain"); n != tt.calls {
				t.Fatalf("QuerySecretNoRemain calls = %d, want %d", n, tt.calls)
			}
			if n := e.emu.Calls("QuerySecretNoDetail"); n != tt.calls {
				t.Fatalf("QuerySecretNoDetail calls = %d, want %d", n, tt.calls)
			}
		})
	}
	// QueryAttempts bounds it.
	e := newEnv(t)
	c := e.client(t, func(cfg *Config) { cfg.QueryAttempts = 5 })
	e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: "ServiceUnavailable"})
	c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1})
	if n := e.emu.Calls("QuerySecretNoRemain"); n != 5 {
		t.Fatalf("calls = %d, want 5", n)
	}
}

// Queries that meet passing failures succeed on a later attempt. Half the
// calls fail; the fault set's seed makes the sequence the same on every run.
func TestQueryRecovers(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, func(cfg *Config) { cfg.QueryAttempts = 10 })
	e.faults.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: "ServiceUnavailable", ErrorRate: 0.5})
	const queries = 20
	for i := range queries {
		if _, err := c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1}); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	if n := e.emu.Calls("QuerySecretNoRemain"); n <= queries {
		t.Fatalf("calls = %d: no query was retried", n)
	}
}

// A release is re-sent after a throttle, never after a lost answer.
func TestReleasePolicy(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	var nos []string
	for range 3 {
		r, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "北京", SpecID: 2})
		if err != nil {
			t.Fatal(err)
		}
		nos = append(nos, r.SecretNo)
	}

	e.faults.Set("ReleaseSecretNo", fault.Fault{ErrorCode: "Throttling.User"})
	err := c.Release(ctx, dypls.DefaultPoolKey, nos[0])
	asError(t, err, provider.ErrThrottled)
	if n := e.emu.Calls("ReleaseSecretNo"); n != 3 {
		t.Fatalf("throttled release sent %d times, want 3", n)
	}

	e.faults.Set("ReleaseSecretNo", fault.Fault{ErrorCode: "ServiceUnavailable"})
	asError(t, c.Release(ctx, dypls.DefaultPoolKey, nos[0]), provider.ErrInDoubt) // a 503 may come after the work
	if n := e.emu.Calls("ReleaseSecretNo"); n != 4 {
		t.Fatalf("unavailable release resent: %d calls", n)
	}

	e.faults.Set("ReleaseSecretNo", fault.Fault{CutRate: 1})
	asError(t, c.Release(ctx, dypls.DefaultPoolKey, nos[1]), provider.ErrInDoubt)
	e.settle()
	if n := e.emu.Calls("ReleaseSecretNo"); n != 5 {
		t.Fatalf("cut release resent: %d calls", n)
	}
	released := 0
	for _, r := range e.emu.Reports() {
		if r.Status == dypls.ReportDeleted {
			released++
		}
	}
	if released != 1 {
		t.Fatalf("releases done = %d, want the cut one only", released)
	}
}

func TestSTS(t *testing.T) {
	e := newEnv(t)
	q := provider.RemainQuery{City: "杭州", SpecID: 1}

	sts := e.client(t, func(c *Config) { c.AccessKeyID, c.AccessKeySecret, c.SecurityToken = stsID, stsSecret, stsToken })
	if _, err := sts.Remain(context.Background(), q); err != nil {
		t.Fatalf("static STS: %v", err)
	}

	// Per-request credentials win over the configured ones: the configured
	// key here is wrong and would be refused.
	wrong := e.client(t, func(c *Config) { c.AccessKeyID, c.AccessKeySecret = "nobody", "nothing" })
	ctx := provider.ContextWithCredentials(context.Background(), provider.Credentials{AccessKeyID: ctxID, AccessKeySecret: ctxSecret, SecurityToken: ctxToken})
	if _, err := wrong.Remain(ctx, q); err != nil {
		t.Fatalf("per-request STS: %v", err)
	}
	if _, err := wrong.Remain(context.Background(), q); provider.KindOf(err) != provider.ErrUnauthorized {
		t.Fatalf("configured wrong key: %v", err)
	}
	bad := provider.ContextWithCredentials(context.Background(), provider.Credentials{AccessKeyID: ctxID, AccessKeySecret: ctxSecret, SecurityToken: stsToken})
	_, err := wrong.Remain(bad, q)
	if pe := asError(t, err, provider.ErrUnauthorized); pe.Code != "InvalidSecurityToken.MismatchWithAccessKey" {
		t.Fatalf("%+v", pe)
	}

	// No configured key: only per-request credentials, and nothing is sent without them.
	none := e.client(t, func(c *Config) { c.AccessKeyID, c.AccessKeySecret = "", "" })
	if _, err := none.Remain(ctx, q); err != nil {
		t.Fatalf("per-request only: %v", err)
	}
	calls := e.emu.Calls("QuerySecretNoRemain")
	if _, err := none.Remain(context.Background(), q); provider.KindOf(err) != provider.ErrUnauthorized {
		t.Fatalf("no credentials: %v", err)
	}
	if e.emu.Calls("QuerySecretNoRemain") != calls {
		t.Fatal("a call without credentials was sent")
	}
}

func TestWrongCredentials(t *testing.T) {
	e := newEnv(t)
	q := provider.RemainQuery{City: "杭州", SpecID: 1}
	tests := []struct {
		id, secret, token string
		code              string
		status            int
	}{
		{"nobody", "x", "", "InvalidAccessKeyId.NotFound", 404},
		{keyID, "wrong-secret", "", "SignatureDoesNotMatch", 400},
		{stsID, "wrong-secret", stsToken, "SignatureDoesNotMatch", 400},
		{stsID, stsSecret, "", "MissingSecurityToken", 400},
		{stsID, stsSecret, ctxToken, "InvalidSecurityToken.MismatchWithAccessKey", 400},
	}
	for _, tt := range tests {
		c := e.client(t, func(c *Config) { c.AccessKeyID, c.AccessKeySecret, c.SecurityToken = tt.id, tt.secret, tt.token })
		_, err := c.Remain(context.Background(), q)
		pe := asError(t, err, provider.ErrUnauthorized)
		if pe.Code != tt.code || pe.Status != tt.status || pe.RequestID == "" {
			t.Fatalf("%s: %+v", tt.code, pe)
		}
		if n := e.emu.Calls("QuerySecretNoRemain"); n != 0 {
			t.Fatalf("refused credentials reached the action %d times", n)
		}
		noSecrets(t, "error", errorTexts(err)...)
		noSecrets(t, "error %+v", fmt.Sprintf("%+v %#v", err, err))
	}
	// The cloud's SignatureDoesNotMatch quotes the string to sign, token
	// included; what reaches the caller is redacted.
	if !strings.Contains(e.logs.String(), "SignatureDoesNotMatch") {
		t.Fatalf("no log of the refusal: %s", e.logs)
	}
	noSecrets(t, "logs", e.logs.String())
}

// No secret, token or signature in any error or log line, whatever fails.
func TestNoSecretsAnywhere(t *testing.T) {
	e := newEnv(t)
	ctx := provider.ContextWithCredentials(context.Background(), provider.Credentials{AccessKeyID: stsID, AccessKeySecret: "bad-" + stsSecret, SecurityToken: stsToken})
	c := e.client(t, func(c *Config) {
		c.AccessKeyID, c.AccessKeySecret, c.SecurityToken = stsID, stsSecret, stsToken
		c.ReadTimeout = 150 * time.Millisecond
	})
	var errs []error
	_, err := c.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}) // SignatureDoesNotMatch, echoing the token
	errs = append(errs, err)
	e.faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	_, err = c.Buy(context.Background(), provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	errs = append(errs, err)
	e.faults.Set("BuySecretNo", fault.Fault{Latency: time.Minute})
	_, err = c.Buy(context.Background(), provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
	errs = append(errs, err)
	e.faults.Set("QuerySecretNoDetail", fault.Fault{ErrorCode: "InternalError"})
	_, err = c.NumberDetail(context.Background(), dypls.DefaultPoolKey, "17000100000")
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("%d: no error", i)
		}
		noSecrets(t, fmt.Sprintf("error %d", i), errorTexts(err)...)
		noSecrets(t, fmt.Sprintf("error %d", i), fmt.Sprintf("%v %+v %#v", err, err, err))
	}
	// The cloud's message quotes the string to sign (AccessKeyId, the
	// action's parameters, SecurityToken): the error keeps the code, the
	// request id and the sentence before the quote, nothing of the quote.
	var pe *provider.Error
	if !errors.As(errs[0], &pe) || pe.Code != "SignatureDoesNotMatch" || pe.RequestID == "" ||
		!strings.HasPrefix(pe.Message, "Specified signature is not matched with our calculation.") {
		t.Fatalf("the signature error lost its code, request id or message: %#v", errs[0])
	}
	for i, err := range errs {
		for _, leak := range []string{"string to sign", "AccessKeyId", stsID, "SecurityToken", "SignatureNonce", "杭州"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error %d quotes the request (%q): %v", i, leak, err)
			}
		}
	}
	noSecrets(t, "logs", e.logs.String())
	for _, want := range []string{`"action":"BuySecretNo"`, `"requestId"`, `"latency"`, `"code":"SignatureDoesNotMatch"`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	testutil.Concurrently(t, 40, func(i int) error {
		if i%2 == 0 {
			_, err := c.Remain(context.Background(), provider.RemainQuery{City: "全国列表", SpecID: 2})
			return err
		}
		ctx := context.Background()
		if i%4 == 1 {
			ctx = provider.ContextWithCredentials(ctx, provider.Credentials{AccessKeyID: ctxID, AccessKeySecret: ctxSecret, SecurityToken: ctxToken})
		}
		_, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 2})
		return err
	})
	p := e.emu.Purchases()
	seen := map[string]bool{}
	for _, x := range p {
		if seen[x.SecretNo] {
			t.Fatalf("%s sold twice", x.SecretNo)
		}
		seen[x.SecretNo] = true
	}
	if len(p) != 20 {
		t.Fatalf("purchases = %d", len(p))
	}
}

// Answers that do not come from the cloud's gateway or service (a load
// balancer's page, an unreadable body, an OK without a number) do not tell
// whether a buy happened: the buy is in doubt, a query merely failed.
func TestAnswersNotFromTheCloud(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		buyKind   provider.Kind
		queryKind provider.Kind
	}{
		{"load balancer 504", 504, "<html>504 Gateway Time-out</html>", provider.ErrInDoubt, provider.ErrUnavailable},
		{"proxy 502", 502, "Bad Gateway", provider.ErrInDoubt, provider.ErrUnavailable},
		{"unreadable 200", 200, "<html>hello</html>", provider.ErrInDoubt, provider.ErrUnavailable},
		{"200 without code", 200, `{"RequestId":"R1"}`, provider.ErrInDoubt, provider.ErrUnavailable},
		{"OK without a number", 200, `{"RequestId":"R1","Code":"OK","Message":"OK"}`, provider.ErrInDoubt, provider.ErrUnavailable},
		{"proxy 403", 403, "Forbidden by proxy", provider.ErrInDoubt, provider.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not the emulator: this stands for whatever sits between us and the cloud.
			var calls atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer hs.Close()
			c, err := New(Config{AccessKeyID: keyID, AccessKeySecret: keySecret, Endpoint: hs.URL, QueryAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Buy(context.Background(), provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: 1})
			asError(t, err, tt.buyKind)
			if tt.name != "OK without a number" {
				_, err = c.Remain(context.Background(), provider.RemainQuery{City: "杭州", SpecID: 1})
				asError(t, err, tt.queryKind)
			}
			if n := calls.Load(); n > 2 {
				t.Fatalf("%d calls", n)
			}
		})
	}
}
