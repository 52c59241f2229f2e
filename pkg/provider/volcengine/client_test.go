package volcengine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/vms"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

const (
	testAK   = "AKLTclienttest"
	testSK   = "client-test-secret-key"
	stsAK    = "AKLTstsclient"
	stsSK    = "sts-client-secret"
	stsToken = "sts-client-session-token"
)

// vmsServer is a VMS emulator on loopback that counts the HTTP requests it
// gets, refused ones included.
type vmsServer struct {
	*vms.Server
	URL      string
	faults   *fault.Set
	requests atomic.Int64
}

func startEmulator(t *testing.T, opts ...vms.Option) *vmsServer {
	t.Helper()
	e := &vmsServer{faults: fault.NewSet(1)}
	base := []vms.Option{vms.WithKey(testAK, testSK), vms.WithSTSToken(stsAK, stsSK, stsToken), vms.WithFaults(e.faults)}
	var err error
	if e.Server, err = vms.New(append(base, opts...)...); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		e.Server.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// logBuffer collects a client's log lines; safe for the concurrent writes
// of parallel calls.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newClient returns a client of url with a short backoff, so that retries
// cost milliseconds, and its log.
func newClient(t *testing.T, url string, edit ...func(*volcengine.Config)) (*volcengine.Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := volcengine.Config{
		AccessKeyID:     testAK,
		SecretAccessKey: testSK,
		Endpoint:        url,
		RetryDelay:      time.Millisecond,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&cfg)
	}
	c, err := volcengine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

// requireNoSecrets fails if text holds the secret key, a session token or a
// signature.
func requireNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{testSK, stsSK, stsToken, "Signature=", "HMAC-SHA256 Credential"} {
		if strings.Contains(text, s) {
			t.Fatalf("%s leaks %q: %s", what, s, text)
		}
	}
}

func asError(t *testing.T, err error) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want a *provider.Error", err, err)
	}
	requireNoSecrets(t, "the error", fmt.Sprintf("%v %+v %#v", err, err, pe))
	return pe
}

func TestConfig(t *testing.T) {
	valid := volcengine.Config{AccessKeyID: testAK, SecretAccessKey: testSK}
	cases := []struct {
		name  string
		edit  func(*volcengine.Config)
		field string
	}{
		{"no key id", func(c *volcengine.Config) { c.AccessKeyID = "" }, "AccessKeyID"},
		{"key id with a space", func(c *volcengine.Config) { c.AccessKeyID = "AK LT" }, "AccessKeyID"},
		{"no secret", func(c *volcengine.Config) { c.SecretAccessKey = "" }, "SecretAccessKey"},
		{"secret with a newline", func(c *volcengine.Config) { c.SecretAccessKey = testSK + "\n" }, "SecretAccessKey"},
		{"token with a newline", func(c *volcengine.Config) { c.SessionToken = stsToken + "\r\n" }, "SessionToken"},
		{"bad region", func(c *volcengine.Config) { c.Region = "CN Beijing" }, "Region"},
		{"endpoint without scheme", func(c *volcengine.Config) { c.Endpoint = "cloud-vms.volcengineapi.com" }, "Endpoint"},
		{"endpoint ftp", func(c *volcengine.Config) { c.Endpoint = "ftp://cloud-vms.volcengineapi.com" }, "Endpoint"},
		{"endpoint with path", func(c *volcengine.Config) { c.Endpoint = "https://cloud-vms.volcengineapi.com/v1" }, "Endpoint"},
		{"endpoint with query", func(c *volcengine.Config) { c.Endpoint = "https://cloud-vms.volcengineapi.com/?a=b" }, "Endpoint"},
		{"endpoint with user info", func(c *volcengine.Config) {
			c.Endpoint = "https://" + testAK + ":" + testSK + "@cloud-vms.volcengineapi.com"
		}, "Endpoint"},
		{"endpoint not a URL", func(c *volcengine.Config) { c.Endpoint = "http://[::1" }, "Endpoint"},
		{"negative timeout", func(c *volcengine.Config) { c.Timeout = -time.Second }, "Timeout"},
		{"negative retry delay", func(c *volcengine.Config) { c.RetryDelay = -time.Second }, "RetryDelay"},
		{"too many retries", func(c *volcengine.Config) { c.MaxRetries = volcengine.MaxMaxRetries + 1 }, "MaxRetries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			c, err := volcengine.New(cfg)
			if err == nil || c != nil {
				t.Fatalf("New accepted %v", cfg)
			}
			pe := asError(t, err)
			if pe.Kind != provider.ErrInvalidParameter || pe.Field != tc.field || !strings.Contains(pe.Message, tc.field) {
				t.Fatalf("got %+v, want an invalid %s", pe, tc.field)
			}
		})
	}

	for _, cfg := range []volcengine.Config{
		valid,
		{AccessKeyID: testAK, SecretAccessKey: testSK, SessionToken: stsToken, Region: "cn-north-1", Endpoint: "http://127.0.0.1:9100", Timeout: time.Second, MaxRetries: -1},
		{AccessKeyID: testAK, SecretAccessKey: testSK, Endpoint: "https://cloud-vms.volcengineapi.com/", MaxRetries: volcengine.MaxMaxRetries},
	} {
		if _, err := volcengine.New(cfg); err != nil {
			t.Errorf("New(%v): %v", cfg, err)
		}
	}

	printed := fmt.Sprintf("%v %+v %#v %s", valid, valid, valid, valid)
	if strings.Contains(printed, testSK) || !strings.Contains(printed, testAK) {
		t.Fatalf("a printed Config: %s", printed)
	}
}

func countPools(keep func(vms.Pool) bool) int {
	n := 0
	for _, p := range vms.DefaultPools() {
		if keep(p) {
			n++
		}
	}
	return n
}

func TestListPools(t *testing.T) {
	e := startEmulator(t)
	c, _ := newClient(t, e.URL)
	ctx := context.Background()
	all := vms.DefaultPools()
	cases := []struct {
		name  string
		q     provider.PoolQuery
		total int
	}{
		{"everything", provider.PoolQuery{}, len(all)},
		{"pool number", provider.PoolQuery{PoolNo: all[5].No}, 1},
		{"name", provider.PoolQuery{Name: "营销"}, countPools(func(p vms.Pool) bool { return strings.Contains(p.Name, "营销") })},
		{"service type", provider.PoolQuery{ServiceType: 100}, countPools(func(p vms.Pool) bool { return p.ServiceType == 100 })},
		{"sub-service type", provider.PoolQuery{SubServiceType: 202}, countPools(func(p vms.Pool) bool { return p.SubServiceType == 202 })},
		{"all filters", provider.PoolQuery{Name: "号码池", ServiceType: 200, SubServiceType: 201}, countPools(func(p vms.Pool) bool {
			return strings.Contains(p.Name, "号码池") && p.SubServiceType == 201
		})},
		{"nothing", provider.PoolQuery{PoolNo: "NP0"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := c.ListPools(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != tc.total || page.Limit != provider.DefaultLimit || page.Offset != 0 || len(page.Records) != min(tc.total, provider.DefaultLimit) {
				t.Fatalf("Total %d Limit %d Offset %d records %d, want Total %d", page.Total, page.Limit, page.Offset, len(page.Records), tc.total)
			}
			for _, p := range page.Records {
				if (tc.q.PoolNo != "" && p.PoolNo != tc.q.PoolNo) || !strings.Contains(p.Name, tc.q.Name) ||
					(tc.q.ServiceType != 0 && p.ServiceType != tc.q.ServiceType) || (tc.q.SubServiceType != 0 && p.SubServiceType != tc.q.SubServiceType) {
					t.Fatalf("record %+v does not match %+v", p, tc.q)
				}
			}
		})
	}

	t.Run("record", func(t *testing.T) {
		want := all[14]
		page, err := c.ListPools(ctx, provider.PoolQuery{PoolNo: want.No})
		if err != nil {
			t.Fatal(err)
		}
		if page.Records[0] != (provider.Pool{
			PoolNo: want.No, Name: want.Name, ServiceType: 200, ServiceTypeName: "隐私号服务",
			SubServiceType: 201, SubServiceTypeName: "AXB", NumberCount: len(want.Numbers),
		}) {
			t.Fatalf("record %+v", page.Records[0])
		}
	})

	t.Run("paging", func(t *testing.T) {
		page, err := c.ListPools(ctx, provider.PoolQuery{Offset: 20, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != len(all) || page.Offset != 20 || page.Limit != 4 || len(page.Records) != 4 || page.Records[0].PoolNo != all[20].No {
			t.Fatalf("page %+v", page)
		}
		page, err = c.ListPools(ctx, provider.PoolQuery{Offset: 24, Limit: 100})
		if err != nil || len(page.Records) != len(all)-24 || page.Limit != 100 {
			t.Fatalf("last page %+v, %v", page, err)
		}
	})
}

func TestAllPools(t *testing.T) {
	e := startEmulator(t)
	c, _ := newClient(t, e.URL)
	ctx := context.Background()
	var got []string
	for p, err := range c.AllPools(ctx, provider.PoolQuery{Limit: 7}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.PoolNo)
	}
	var want []string
	for _, p := range vms.DefaultPools() {
		want = append(want, p.No)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("AllPools gave %v, want %v", got, want)
	}
	if calls := e.Calls("NumberPoolList"); calls != (len(want)+6)/7 {
		t.Fatalf("%d calls for %d pools in pages of 7", calls, len(want))
	}

	// A filtered walk from an offset, with the default page size.
	n := 0
	for p, err := range provider.AllPools(ctx, c, provider.PoolQuery{ServiceType: 200, Offset: 1}) {
		if err != nil || p.ServiceType != 200 {
			t.Fatalf("%+v %v", p, err)
		}
		n++
	}
	if want := countPools(func(p vms.Pool) bool { return p.ServiceType == 200 }) - 1; n != want {
		t.Fatalf("%d privacy pools after the first, want %d", n, want)
	}

	// Stopping early stops the calls.
	before := e.Calls("NumberPoolList")
	for range c.AllPools(ctx, provider.PoolQuery{Limit: 2}) {
		break
	}
	if e.Calls("NumberPoolList") != before+1 {
		t.Fatal("breaking out of AllPools did not stop it")
	}

	// An error ends the walk, and is yielded once.
	e.faults.Set("NumberPoolList", fault.Fault{ErrorCode: "InvalidParameter"})
	var errs int
	for _, err := range c.AllPools(ctx, provider.PoolQuery{}) {
		if err == nil || !errors.Is(err, provider.ErrInvalidParameter) {
			t.Fatalf("got %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Fatalf("%d errors yielded", errs)
	}
}

func TestListNumbers(t *testing.T) {
	e := startEmulator(t)
	c, _ := newClient(t, e.URL)
	ctx := context.Background()
	all := vms.DefaultPools()
	type num struct {
		vms.Number
		pool vms.Pool
	}
	var nums []num
	for _, p := range all {
		for _, n := range p.Numbers {
			nums = append(nums, num{n, p})
		}
	}
	count := func(keep func(num) bool) int {
		c := 0
		for _, n := range nums {
			if keep(n) {
				c++
			}
		}
		return c
	}
	pool := all[0]
	cases := []struct {
		name  string
		q     provider.NumberQuery
		total int
	}{
		{"everything", provider.NumberQuery{Limit: 100}, len(nums)},
		{"pool", provider.NumberQuery{PoolNo: pool.No}, len(pool.Numbers)},
		{"numbers", provider.NumberQuery{Numbers: []string{nums[3].Number.Number, nums[40].Number.Number, "17099999999"}}, 2},
		{"pool type", provider.NumberQuery{PoolType: 202}, count(func(n num) bool { return n.pool.SubServiceType == 202 })},
		{"status", provider.NumberQuery{StatusCode: 2}, count(func(n num) bool { return n.StatusCode == 2 })},
		{"fixed lines", provider.NumberQuery{TypeCode: 1, Limit: 100}, count(func(n num) bool { return n.TypeCode == 1 })},
		{"pool and status", provider.NumberQuery{PoolNo: pool.No, StatusCode: 1}, count(func(n num) bool { return n.pool.No == pool.No && n.StatusCode == 1 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.total == 0 {
				t.Fatal("a case that expects nothing proves nothing")
			}
			page, err := c.ListNumbers(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			limit := cmpOr(tc.q.Limit, provider.DefaultLimit)
			if page.Total != tc.total || page.Limit != limit || len(page.Records) != min(tc.total, limit) {
				t.Fatalf("Total %d Limit %d records %d, want Total %d", page.Total, page.Limit, len(page.Records), tc.total)
			}
		})
	}

	t.Run("record", func(t *testing.T) {
		p := all[14]
		n := p.Numbers[2]
		page, err := c.ListNumbers(ctx, provider.NumberQuery{Numbers: []string{n.Number}})
		if err != nil {
			t.Fatal(err)
		}
		got := page.Records[0]
		if got.Number != n.Number || got.Location != n.Location || got.PoolNo != p.No || got.PoolName != p.Name ||
			got.PoolTypeCode != 201 || got.PoolTypeDesc != "AXB" || got.StatusCode != n.StatusCode || got.StatusDesc == "" ||
			got.TypeCode != 0 || got.TypeDesc != "手机" || got.ServiceTypeCode != 200 || got.ServiceTypeDesc == "" ||
			got.CurrentBindCount != n.BindCount || got.PurchaseTime != n.PurchaseTime.Format("2006-01-02 15:04:05") {
			t.Fatalf("record %+v for %+v", got, n)
		}
	})

	t.Run("AllNumbers", func(t *testing.T) {
		before := e.Calls("NumberList")
		seen := map[string]bool{}
		for n, err := range c.AllNumbers(ctx, provider.NumberQuery{Limit: 50}) {
			if err != nil {
				t.Fatal(err)
			}
			if seen[n.Number] {
				t.Fatalf("%s twice", n.Number)
			}
			seen[n.Number] = true
		}
		if len(seen) != len(nums) || e.Calls("NumberList")-before != (len(nums)+49)/50 {
			t.Fatalf("%d numbers in %d calls", len(seen), e.Calls("NumberList")-before)
		}
		for n, err := range c.AllNumbers(ctx, provider.NumberQuery{PoolNo: pool.No, Limit: 1}) {
			if err != nil || n.PoolNo != pool.No {
				t.Fatalf("%+v %v", n, err)
			}
		}
	})
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Bad input is refused before any call, naming the field.
func TestInvalidInput(t *testing.T) {
	e := startEmulator(t)
	c, _ := newClient(t, e.URL)
	ctx := context.Background()
	checks := []struct {
		field string
		call  func() error
	}{
		{"limit", func() error { _, err := c.ListPools(ctx, provider.PoolQuery{Limit: 101}); return err }},
		{"offset", func() error { _, err := c.ListPools(ctx, provider.PoolQuery{Offset: -1}); return err }},
		{"offset", func() error { _, err := c.ListPools(ctx, provider.PoolQuery{Offset: 1 << 31}); return err }},
		{"serviceType", func() error { _, err := c.ListPools(ctx, provider.PoolQuery{ServiceType: -1}); return err }},
		{"numbers", func() error { _, err := c.ListNumbers(ctx, provider.NumberQuery{Numbers: []string{"1x"}}); return err }},
		{"offset", func() error { _, err := c.ListNumbers(ctx, provider.NumberQuery{Offset: 1 << 31}); return err }},
		{"poolType", func() error { _, err := c.ListNumbers(ctx, provider.NumberQuery{PoolType: 1 << 31}); return err }},
	}
	for _, ch := range checks {
		err := ch.call()
		if pe := asError(t, err); pe.Kind != provider.ErrInvalidParameter || pe.Field != ch.field {
			t.Errorf("got %+v, want invalid %s", pe, ch.field)
		}
	}
	if e.requests.Load() != 0 {
		t.Fatalf("%d requests were sent for invalid input", e.requests.Load())
	}
}

// TestErrorMapping injects every code the emulator knows and checks its
// place in the taxonomy, what the error keeps, and that exactly the
// retryable ones are retried, MaxRetries times.
func TestErrorMapping(t *testing.T) {
	want := map[string]provider.Kind{
		"MissingAuthenticationToken": provider.ErrUnauthorized,
		"MissingSignature":           provider.ErrUnauthorized,
		"MissingRequestInfo":         provider.ErrUnauthorized,
		"InvalidAuthorization":       provider.ErrUnauthorized,
		"InvalidCredential":          provider.ErrUnauthorized,
		"InvalidAccessKey":           provider.ErrUnauthorized,
		"SignatureDoesNotMatch":      provider.ErrUnauthorized,
		"InvalidSecretToken":         provider.ErrUnauthorized,
		"InvalidTimestamp":           provider.ErrUnauthorized,
		"AccessDenied":               provider.ErrUnauthorized,
		"MissingParameter":           provider.ErrInvalidParameter,
		"InvalidParameter":           provider.ErrInvalidParameter,
		"IllegalArgument":            provider.ErrInvalidParameter,
		"FlowLimitExceeded":          provider.ErrThrottled,
		"AccountFlowLimitExceeded":   provider.ErrThrottled,
		"UndefinedError":             provider.ErrUnavailable,
		"InternalError":              provider.ErrUnavailable,
		"InternalServiceTimeout":     provider.ErrUnavailable,
		"ServiceUnavailableTemp":     provider.ErrUnavailable,
		"SystemError":                provider.ErrUnavailable,
		"DownStreamError":            provider.ErrUnavailable,
		"InvalidActionOrVersion":     provider.ErrInternal,
		"ServiceNotFound":            provider.ErrInternal,
		"MethodNotAllowed":           provider.ErrInternal,
		// Codes the emulator does not know come with 400: unmapped.
		"QuotaExceeded": provider.ErrInternal,
		// A suffixed code is its base code.
		"InvalidParameter.Limit": provider.ErrInvalidParameter,
	}
	for _, code := range vms.Codes() {
		if _, ok := want[code]; !ok {
			t.Errorf("the emulator answers %s, which this test does not check", code)
		}
	}
	const retries = 2
	e := startEmulator(t)
	c, logs := newClient(t, e.URL, func(cfg *volcengine.Config) { cfg.MaxRetries = retries })
	for code, kind := range want {
		t.Run(code, func(t *testing.T) {
			e.faults.Set("NumberPoolList", fault.Fault{ErrorCode: code})
			before := e.Calls("NumberPoolList")
			_, err := c.ListPools(context.Background(), provider.PoolQuery{})
			pe := asError(t, err)
			if pe.Kind != kind || !errors.Is(err, kind) || provider.KindOf(err) != kind {
				t.Fatalf("%s is %s, want %s", code, pe.Kind, kind)
			}
			if pe.Provider != "volcengine" || pe.Op != "NumberPoolList" || pe.Code != code || pe.Status != vms.Status(code) || pe.RequestID == "" || pe.Message == "" {
				t.Fatalf("error %+v", pe)
			}
			calls := e.Calls("NumberPoolList") - before
			if wantCalls := map[bool]int{true: 1 + retries, false: 1}[kind.Retryable()]; calls != wantCalls {
				t.Fatalf("%s (%s) was sent %d times, want %d", code, kind, calls, wantCalls)
			}
		})
	}
	requireNoSecrets(t, "the log", logs.String())
	if !strings.Contains(logs.String(), `"providerRequestId"`) || !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Fatalf("failures are not logged with the cloud's request id: %s", logs.String())
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		maxRetries, sends int
	}{{-1, 1}, {0, 1 + volcengine.DefaultMaxRetries}, {1, 2}, {4, 5}} {
		t.Run(fmt.Sprint(tc.maxRetries), func(t *testing.T) {
			e := startEmulator(t)
			e.faults.Set("NumberList", fault.Fault{ErrorCode: "FlowLimitExceeded"})
			c, _ := newClient(t, e.URL, func(cfg *volcengine.Config) { cfg.MaxRetries = tc.maxRetries })
			_, err := c.ListNumbers(ctx, provider.NumberQuery{})
			if !errors.Is(err, provider.ErrThrottled) || e.Calls("NumberList") != tc.sends {
				t.Fatalf("got %v after %d sends, want Throttled after %d", err, e.Calls("NumberList"), tc.sends)
			}
		})
	}

	t.Run("throttled by a QPS limit", func(t *testing.T) {
		e := startEmulator(t)
		e.faults.Set("NumberPoolList", fault.Fault{QPS: 0.001, Burst: 1})
		c, _ := newClient(t, e.URL)
		if _, err := c.ListPools(ctx, provider.PoolQuery{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.ListPools(ctx, provider.PoolQuery{})
		if pe := asError(t, err); pe.Kind != provider.ErrThrottled || pe.Code != "FlowLimitExceeded" || pe.Status != http.StatusTooManyRequests {
			t.Fatalf("over the QPS: %+v", pe)
		}
	})

	t.Run("a failure that passes", func(t *testing.T) {
		// The first send meets a faulted emulator, the second a healthy one.
		bad, good := startEmulator(t), startEmulator(t)
		bad.faults.Set("NumberPoolList", fault.Fault{ErrorCode: "SystemError"})
		var sends atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sends.Add(1) == 1 {
				bad.Server.ServeHTTP(w, r)
				return
			}
			good.Server.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		c, _ := newClient(t, srv.URL)
		page, err := c.ListPools(ctx, provider.PoolQuery{})
		if err != nil || page.Total != len(vms.DefaultPools()) {
			t.Fatalf("%+v %v", page, err)
		}
		if bad.Calls("NumberPoolList") != 1 || good.Calls("NumberPoolList") != 1 {
			t.Fatalf("sends: faulted %d, healthy %d", bad.Calls("NumberPoolList"), good.Calls("NumberPoolList"))
		}
	})

	t.Run("cut connections", func(t *testing.T) {
		e := startEmulator(t)
		e.faults.Set("NumberPoolList", fault.Fault{CutRate: 1})
		c, _ := newClient(t, e.URL)
		_, err := c.ListPools(ctx, provider.PoolQuery{})
		if pe := asError(t, err); pe.Kind != provider.ErrUnavailable || pe.Err == nil || pe.Status != 0 {
			t.Fatalf("a cut read: %+v", pe)
		}
		if e.Calls("NumberPoolList") != 1+volcengine.DefaultMaxRetries {
			t.Fatalf("a cut read was sent %d times", e.Calls("NumberPoolList"))
		}
	})
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t)
	cases := []struct {
		name string
		edit func(*volcengine.Config)
		code string
	}{
		{"STS", func(c *volcengine.Config) { c.AccessKeyID, c.SecretAccessKey, c.SessionToken = stsAK, stsSK, stsToken }, ""},
		{"north region", func(c *volcengine.Config) { c.Region = "cn-north-1" }, ""},
		{"wrong secret", func(c *volcengine.Config) { c.SecretAccessKey = "not-" + testSK }, "SignatureDoesNotMatch"},
		{"unknown key", func(c *volcengine.Config) { c.AccessKeyID = "AKLTnobody" }, "InvalidAccessKey"},
		{"STS without token", func(c *volcengine.Config) { c.AccessKeyID, c.SecretAccessKey = stsAK, stsSK }, "InvalidSecretToken"},
		{"STS with another token", func(c *volcengine.Config) {
			c.AccessKeyID, c.SecretAccessKey, c.SessionToken = stsAK, stsSK, "expired-"+stsToken
		}, "InvalidSecretToken"},
		{"region not served", func(c *volcengine.Config) { c.Region = "ap-southeast-1" }, "InvalidCredential"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, logs := newClient(t, e.URL, tc.edit)
			before := e.requests.Load()
			_, err := c.ListPools(ctx, provider.PoolQuery{})
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			pe := asError(t, err)
			if pe.Kind != provider.ErrUnauthorized || pe.Code != tc.code || pe.Status == 0 || pe.RequestID == "" {
				t.Fatalf("got %+v, want Unauthorized %s", pe, tc.code)
			}
			if sent := e.requests.Load() - before; sent != 1 {
				t.Fatalf("a refused key was sent %d times", sent)
			}
			requireNoSecrets(t, "the log", logs.String())
			if strings.Contains(logs.String(), "expired-") {
				t.Fatalf("the log leaks the token: %s", logs.String())
			}
		})
	}
}

func TestContext(t *testing.T) {
	e := startEmulator(t)
	e.faults.Set("NumberPoolList", fault.Fault{Latency: time.Hour})

	t.Run("cancelled before", func(t *testing.T) {
		c, _ := newClient(t, e.URL)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := e.requests.Load()
		_, err := c.ListPools(ctx, provider.PoolQuery{})
		if pe := asError(t, err); pe.Kind != provider.ErrUnavailable || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %+v", pe)
		}
		if e.requests.Load() != before {
			t.Fatal("a cancelled call was sent")
		}
	})

	t.Run("cancelled in flight", func(t *testing.T) {
		c, _ := newClient(t, e.URL)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		before := e.Calls("NumberPoolList")
		done := make(chan error, 1)
		go func() {
			_, err := c.ListPools(ctx, provider.PoolQuery{})
			done <- err
		}()
		for e.Calls("NumberPoolList") == before {
			time.Sleep(time.Millisecond)
		}
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
		if e.Calls("NumberPoolList") != before+1 {
			t.Fatal("a cancelled call was retried")
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		c, _ := newClient(t, e.URL, func(cfg *volcengine.Config) { cfg.Timeout = 20 * time.Millisecond })
		_, err := c.ListPools(context.Background(), provider.PoolQuery{})
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("the deadline bounds the backoff", func(t *testing.T) {
		e := startEmulator(t)
		e.faults.Set("NumberList", fault.Fault{ErrorCode: "FlowLimitExceeded"})
		c, _ := newClient(t, e.URL, func(cfg *volcengine.Config) {
			cfg.MaxRetries, cfg.RetryDelay = volcengine.MaxMaxRetries, time.Hour
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := c.ListNumbers(ctx, provider.NumberQuery{})
		if !errors.Is(err, context.DeadlineExceeded) || e.Calls("NumberList") != 1 {
			t.Fatalf("got %v after %d sends", err, e.Calls("NumberList"))
		}
	})
}

// Answers that are not VMS's: a proxy's error page, a redirect, a 200
// without a Result, and a gateway that echoes what it was sent.
func TestForeignAnswers(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		handler http.HandlerFunc
		kind    provider.Kind
		status  int
		sends   int
	}{
		{"proxy error page", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		}, provider.ErrUnavailable, http.StatusBadGateway, 1 + volcengine.DefaultMaxRetries},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://example.com/", http.StatusFound)
		}, provider.ErrInternal, http.StatusFound, 1},
		{"200 not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("OK"))
		}, provider.ErrUnavailable, http.StatusOK, 1},
		{"200 JSON array", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("[]"))
		}, provider.ErrUnavailable, http.StatusOK, 1},
		{"200 empty", func(w http.ResponseWriter, r *http.Request) {}, provider.ErrUnavailable, http.StatusOK, 1},
		{"error without metadata", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errorcode":"x","message":"y"}`))
		}, provider.ErrUnauthorized, http.StatusForbidden, 1},
		{"no Result", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ResponseMetadata":{"RequestId":"r1","Action":"NumberPoolList"}}`))
		}, provider.ErrUnavailable, http.StatusOK, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sends atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sends.Add(1)
				tc.handler(w, r)
			}))
			t.Cleanup(srv.Close)
			c, _ := newClient(t, srv.URL)
			_, err := c.ListPools(ctx, provider.PoolQuery{})
			pe := asError(t, err)
			if pe.Kind != tc.kind || pe.Status != tc.status || int(sends.Load()) != tc.sends {
				t.Fatalf("got %+v after %d sends, want %s/%d after %d", pe, sends.Load(), tc.kind, tc.status, tc.sends)
			}
		})
	}

	t.Run("echoed secrets are scrubbed", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			msg := strings.ReplaceAll("got "+r.Header.Get("Authorization")+" token "+r.Header.Get("X-Security-Token")+" for key "+stsSK, `"`, `'`)
			fmt.Fprintf(w, `{"ResponseMetadata":{"RequestId":"r2","Error":{"Code":"SignatureDoesNotMatch","Message":%q}}}`, msg)
		}))
		t.Cleanup(srv.Close)
		c, logs := newClient(t, srv.URL, func(cfg *volcengine.Config) {
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = stsAK, stsSK, stsToken
		})
		_, err := c.ListPools(ctx, provider.PoolQuery{})
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.ErrUnauthorized || !strings.Contains(pe.Message, "[redacted]") ||
			strings.Contains(err.Error(), stsToken) || strings.Contains(err.Error(), stsSK) {
			t.Fatalf("got %+v", pe)
		}
		sig := pe.Message[strings.Index(pe.Message, "got "):]
		if strings.Contains(sig, "Signature=") && !strings.Contains(sig, "Signature=[redacted]") {
			t.Fatalf("the signature survives: %s", pe.Message)
		}
		if strings.Contains(logs.String(), stsSK) || strings.Contains(logs.String(), stsToken) {
			t.Fatalf("the log leaks: %s", logs.String())
		}
	})

	t.Run("an echoed request and key id are cut", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			msg := "The request signature we calculated does not match the signature you provided. The Canonical Request for this request should have been\n" +
				r.Method + "\n/\nAction=NumberPoolList&Version=2022-01-01\nx-date:" + r.Header.Get("X-Date") + "\n" + r.Header.Get("Authorization")
			fmt.Fprintf(w, `{"ResponseMetadata":{"RequestId":"r3","Error":{"Code":"SignatureDoesNotMatch","Message":%q}}}`, msg)
		}))
		t.Cleanup(srv.Close)
		c, _ := newClient(t, srv.URL, func(cfg *volcengine.Config) {
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = stsAK, stsSK, stsToken
		})
		_, err := c.ListPools(ctx, provider.PoolQuery{})
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Code != "SignatureDoesNotMatch" || pe.RequestID != "r3" ||
			!strings.HasPrefix(pe.Message, "The request signature we calculated does not match the signature you provided.") {
			t.Fatalf("got %#v", err)
		}
		for _, leak := range []string{stsAK, "Canonical Request", "Action=", "x-date", "Credential", "\n"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("the error quotes the request (%q): %v", leak, err)
			}
		}
	})
}

// Many goroutines share one client.
func TestConcurrentCalls(t *testing.T) {
	e := startEmulator(t)
	c, _ := newClient(t, e.URL)
	testutil.Concurrently(t, 16, func(i int) error {
		if i%2 == 0 {
			_, err := c.ListPools(context.Background(), provider.PoolQuery{Offset: i})
			return err
		}
		_, err := c.ListNumbers(context.Background(), provider.NumberQuery{Offset: i})
		return err
	})
}

// calls records what a client's Observe is told.
type calls struct {
	mu  sync.Mutex
	got []provider.Call
}

func (c *calls) observe(_ context.Context, call provider.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, call)
}

func (c *calls) codes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.got {
		if call.Provider != "volcengine" || call.Took <= 0 {
			out = append(out, fmt.Sprintf("bad call %+v", call))
			continue
		}
		out = append(out, call.Action+" "+call.Code)
	}
	return out
}

// Observe is told of every request sent, each retry too, with the cloud's
// code or what became of it.
func TestObserve(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t)
	rec := &calls{}
	c, _ := newClient(t, e.URL, func(cfg *volcengine.Config) { cfg.MaxRetries = 1; cfg.Observe = rec.observe })
	if _, err := c.ListPools(ctx, provider.PoolQuery{}); err != nil {
		t.Fatal(err)
	}
	e.faults.Set("NumberList", fault.Fault{ErrorCode: "FlowLimitExceeded"})
	_, _ = c.ListNumbers(ctx, provider.NumberQuery{})
	e.faults.Set("NumberPoolList", fault.Fault{CutRate: 1})
	_, _ = c.ListPools(ctx, provider.PoolQuery{})
	want := []string{
		"NumberPoolList OK",
		"NumberList FlowLimitExceeded", "NumberList FlowLimitExceeded",
		"NumberPoolList RequestError", "NumberPoolList RequestError",
	}
	if got := rec.codes(); !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}
