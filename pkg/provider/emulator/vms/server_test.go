package vms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

func TestDefaultSeed(t *testing.T) {
	ps := DefaultPools()
	if err := checkPools(nil, ps); err != nil {
		t.Fatalf("the seed is not valid: %v", err)
	}
	if len(ps) < 25 {
		t.Fatalf("%d pools, want at least 25 to page over", len(ps))
	}
	subs := map[int]bool{}
	total := 0
	for _, p := range ps {
		subs[p.SubServiceType] = true
		total += len(p.Numbers)
	}
	for sub := range subServiceTypeNames {
		if !subs[sub] {
			t.Errorf("no pool of sub-service type %d", sub)
		}
	}
	if total != 139 {
		t.Errorf("%d numbers, the package doc says 139", total)
	}
}

func TestNumberPoolListFilters(t *testing.T) {
	s := newTestServer(t)
	all := DefaultPools()
	count := func(keep func(Pool) bool) int {
		n := 0
		for _, p := range all {
			if keep(p) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		name string
		body string
		want int
	}{
		{"no filter", `{}`, len(all)},
		{"pool number", fmt.Sprintf(`{"NumberPoolNo":%q}`, all[3].No), 1},
		{"pool number is exact", fmt.Sprintf(`{"NumberPoolNo":%q}`, all[3].No[:10]), 0},
		{"name substring", `{"NumberPoolName":"营销"}`, count(func(p Pool) bool { return strings.Contains(p.Name, "营销") })},
		{"whole name", `{"NumberPoolName":"营销号码池"}`, count(func(p Pool) bool { return strings.Contains(p.Name, "营销号码池") })},
		{"name matching nothing", `{"NumberPoolName":"不存在"}`, 0},
		{"service type", `{"ServiceType":200}`, count(func(p Pool) bool { return p.ServiceType == 200 })},
		{"service type as string", `{"ServiceType":"100"}`, count(func(p Pool) bool { return p.ServiceType == 100 })},
		{"sub-service type", `{"SubServiceType":201}`, count(func(p Pool) bool { return p.SubServiceType == 201 })},
		{"both types", `{"ServiceType":100,"SubServiceType":102}`, count(func(p Pool) bool { return p.SubServiceType == 102 })},
		{"types that do not go together", `{"ServiceType":100,"SubServiceType":201}`, 0},
		{"zero types do not filter", `{"ServiceType":0,"SubServiceType":0}`, len(all)},
		{"null does not filter", `{"NumberPoolName":null}`, len(all)},
		{"name and type", `{"NumberPoolName":"号码池","ServiceType":200}`, count(func(p Pool) bool { return strings.Contains(p.Name, "号码池") && p.ServiceType == 200 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == 0 && !strings.Contains(tc.name, "nothing") && !strings.Contains(tc.name, "exact") && !strings.Contains(tc.name, "together") {
				t.Fatal("a case that expects nothing proves nothing")
			}
			p := pools(t, s, tc.body)
			if p.Total != tc.want {
				t.Fatalf("Total %d, want %d", p.Total, tc.want)
			}
			if len(p.Records) != min(tc.want, 20) {
				t.Fatalf("%d records, want %d", len(p.Records), min(tc.want, 20))
			}
		})
	}
}

func TestNumberPoolListRecord(t *testing.T) {
	s := newTestServer(t)
	want := DefaultPools()[13]
	p := pools(t, s, fmt.Sprintf(`{"NumberPoolNo":%q}`, want.No))
	got := p.Records[0]
	if got != (poolRecord{
		NumberPoolName: want.Name, NumberPoolNo: want.No,
		ServiceType: 200, ServiceTypeName: "隐私号服务",
		SubServiceType: 201, SubServiceTypeName: "AXB",
		NumberCount: len(want.Numbers),
	}) {
		t.Fatalf("record %+v", got)
	}
}

func TestNumberPoolListPaging(t *testing.T) {
	s := newTestServer(t)
	n := len(DefaultPools())
	cases := []struct {
		body                 string
		offset, limit, count int
	}{
		{`{}`, 0, 20, 20},
		{`{"Offset":20}`, 20, 20, n - 20},
		{`{"Offset":10,"Limit":10}`, 10, 10, 10},
		{`{"Limit":0}`, 0, 20, 20},
		{`{"Limit":1000}`, 0, 100, n},
		{fmt.Sprintf(`{"Offset":%d}`, n), n, 20, 0},
		{`{"Offset":1000000}`, 1000000, 20, 0},
	}
	var seen []string
	for _, tc := range cases {
		p := pools(t, s, tc.body)
		if p.Total != n || p.Offset != tc.offset || p.Limit != tc.limit || len(p.Records) != tc.count {
			t.Fatalf("%s: Total %d Offset %d Limit %d records %d, want %d %d %d %d",
				tc.body, p.Total, p.Offset, p.Limit, len(p.Records), n, tc.offset, tc.limit, tc.count)
		}
	}
	for off := 0; off < n; off += 7 {
		for _, r := range pools(t, s, fmt.Sprintf(`{"Offset":%d,"Limit":7}`, off)).Records {
			seen = append(seen, r.NumberPoolNo)
		}
	}
	var want []string
	for _, p := range DefaultPools() {
		want = append(want, p.No)
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("pages of 7 give %v, want every pool once in order %v", seen, want)
	}
}

// NumberCount is the number of numbers NumberList finds in the pool.
func TestNumberCountConsistent(t *testing.T) {
	s := newTestServer(t)
	for _, p := range pools(t, s, `{"Limit":100}`).Records {
		got := numbers(t, s, fmt.Sprintf(`{"NumberPoolNo":%q,"Limit":500}`, p.NumberPoolNo))
		if got.Total != p.NumberCount || len(got.Records) != p.NumberCount {
			t.Fatalf("pool %s: NumberCount %d, NumberList Total %d with %d records", p.NumberPoolNo, p.NumberCount, got.Total, len(got.Records))
		}
		for _, r := range got.Records {
			if r.NumberPoolNo != p.NumberPoolNo || r.NumberPoolName != p.NumberPoolName || r.NumberPoolTypeCode != p.SubServiceType || r.ServiceTypeCode != p.ServiceType {
				t.Fatalf("number %s does not name its pool: %+v", r.Number, r)
			}
		}
	}
}

func TestNumberListFilters(t *testing.T) {
	s := newTestServer(t)
	type num struct {
		Number
		pool Pool
	}
	var all []num
	for _, p := range DefaultPools() {
		for _, n := range p.Numbers {
			all = append(all, num{n, p})
		}
	}
	count := func(keep func(num) bool) int {
		c := 0
		for _, n := range all {
			if keep(n) {
				c++
			}
		}
		return c
	}
	a, b := all[0].Number.Number, all[len(all)-1].Number.Number
	pool := DefaultPools()[0]
	cases := []struct {
		name string
		body string
		want int
	}{
		{"no filter", `{"Limit":500}`, len(all)},
		{"pool", fmt.Sprintf(`{"NumberPoolNo":%q}`, pool.No), len(pool.Numbers)},
		{"numbers", fmt.Sprintf(`{"NumberList":[%q,%q,"19999999999"]}`, a, b), 2},
		{"numbers comma-separated", fmt.Sprintf(`{"NumberList":"%s,%s"}`, a, b), 2},
		{"one number", fmt.Sprintf(`{"Number":%q}`, b), 1},
		{"numbers in another pool", fmt.Sprintf(`{"NumberPoolNo":%q,"NumberList":[%q]}`, pool.No, b), 0},
		{"pool type", `{"NumberPoolTypeCode":201,"Limit":500}`, count(func(n num) bool { return n.pool.SubServiceType == 201 })},
		{"status in use", `{"NumberStatusCode":1,"Limit":500}`, count(func(n num) bool { return n.StatusCode == 1 })},
		{"status disabled by user", `{"NumberStatusCode":2,"Limit":500}`, count(func(n num) bool { return n.StatusCode == 2 })},
		{"status disabled by platform", `{"NumberStatusCode":3}`, count(func(n num) bool { return n.StatusCode == 3 })},
		{"status cancelled", `{"NumberStatusCode":"4"}`, count(func(n num) bool { return n.StatusCode == 4 })},
		{"mobile", `{"NumberTypeCode":0,"Limit":500}`, count(func(n num) bool { return n.TypeCode == 0 })},
		{"fixed line", `{"NumberTypeCode":1,"Limit":500}`, count(func(n num) bool { return n.TypeCode == 1 })},
		{"type and status", `{"NumberTypeCode":0,"NumberStatusCode":2}`, count(func(n num) bool { return n.TypeCode == 0 && n.StatusCode == 2 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == 0 && tc.name != "numbers in another pool" {
				t.Fatal("a case that expects nothing proves nothing")
			}
			p := numbers(t, s, tc.body)
			if p.Total != tc.want {
				t.Fatalf("Total %d, want %d", p.Total, tc.want)
			}
			if len(p.Records) != min(tc.want, p.Limit) {
				t.Fatalf("%d records, want %d", len(p.Records), min(tc.want, p.Limit))
			}
		})
	}

	t.Run("record", func(t *testing.T) {
		want := DefaultPools()[13]
		n := want.Numbers[1]
		got := numbers(t, s, fmt.Sprintf(`{"Number":%q}`, n.Number)).Records[0]
		if got != (numberRecord{
			Number: n.Number, NumberLocation: "浙江杭州",
			NumberPoolNo: want.No, NumberPoolName: want.Name,
			NumberPoolTypeCode: 201, NumberPoolTypeDesc: "AXB",
			NumberStatusCode: n.StatusCode, NumberStatusDesc: numberStatusDescs[n.StatusCode],
			NumberTypeCode: 0, NumberTypeDesc: "手机",
			ServiceTypeCode: 200, ServiceTypeDesc: "隐私号服务",
			CurrentBindCount:   n.BindCount,
			NumberPurchaseTime: n.PurchaseTime.In(cn.Shanghai).Format(cn.TimeLayout),
		}) {
			t.Fatalf("record %+v", got)
		}
	})

	t.Run("paging", func(t *testing.T) {
		p := numbers(t, s, `{"Offset":130,"Limit":1000}`)
		if p.Total != len(all) || p.Limit != maxNumbers || p.Offset != 130 || len(p.Records) != len(all)-130 {
			t.Fatalf("Total %d Limit %d Offset %d records %d", p.Total, p.Limit, p.Offset, len(p.Records))
		}
		if d := numbers(t, s, `{}`); d.Limit != 20 || len(d.Records) != 20 {
			t.Fatalf("default page: Limit %d, %d records", d.Limit, len(d.Records))
		}
	})
}

// The gateway takes simple parameters from a GET query or a form body too.
func TestQueryAndFormParameters(t *testing.T) {
	s := newTestServer(t)
	ns := DefaultPools()[0].Numbers
	form := "application/x-www-form-urlencoded; charset=utf-8"
	cases := []struct {
		name            string
		method, q, ct   string
		body            string
		total, limitWas int
	}{
		{"GET pools", "GET", poolQuery + "&ServiceType=200&Limit=5", "", "", 13, 5},
		{"form pools", "POST", poolQuery, form, "ServiceType=200&Limit=5", 13, 5},
		{"form wins over query", "POST", poolQuery + "&Limit=7", form, "Limit=5", len(DefaultPools()), 5},
		{"JSON falls back to query", "POST", poolQuery + "&Limit=7", jsonCT, `{}`, len(DefaultPools()), 7},
		{"GET numbers, indexed list", "GET", numQuery + "&NumberList.1=" + ns[0].Number + "&NumberList.2=" + ns[1].Number, "", "", 2, 20},
		{"form numbers, repeated list", "POST", numQuery, form, "NumberList=" + ns[0].Number + "&NumberList=" + ns[1].Number + "," + ns[2].Number, 3, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p struct{ Total, Limit int }
			ok(t, s, signed(tc.method, tc.q, tc.ct, tc.body), &p)
			if p.Total != tc.total || p.Limit != tc.limitWas {
				t.Fatalf("Total %d Limit %d, want %d %d", p.Total, p.Limit, tc.total, tc.limitWas)
			}
		})
	}
}

func TestPoolsOptions(t *testing.T) {
	own := []Pool{{No: "NP1", Name: "测试池", ServiceType: 200, SubServiceType: 202, Numbers: []Number{
		{Number: "17000000001", Location: "北京", StatusCode: 1},
		{Number: "17000000002", Location: "北京", StatusCode: 2},
	}}}
	s := newTestServer(t, WithPools(own...))
	own[0].Name = "changed by the caller"
	if p := pools(t, s, `{}`); p.Total != 1 || p.Records[0].NumberPoolName != "测试池" || p.Records[0].NumberCount != 2 {
		t.Fatalf("WithPools: %+v", p)
	}
	if err := s.AddPools(Pool{No: "NP2", Name: "新池", ServiceType: 100, SubServiceType: 102, Numbers: []Number{{Number: "01012345678", TypeCode: 1, StatusCode: 1}}}); err != nil {
		t.Fatal(err)
	}
	if p := pools(t, s, `{}`); p.Total != 2 {
		t.Fatalf("after AddPools: Total %d", p.Total)
	}
	if n := numbers(t, s, `{"Number":"01012345678"}`); n.Total != 1 || n.Records[0].NumberPurchaseTime != "" {
		t.Fatalf("added number: %+v", n)
	}

	bad := []struct {
		name string
		pool Pool
	}{
		{"no number", Pool{Name: "x", ServiceType: 100, SubServiceType: 101}},
		{"no name", Pool{No: "NP3", ServiceType: 100, SubServiceType: 101}},
		{"pool twice", Pool{No: "NP1", Name: "x", ServiceType: 100, SubServiceType: 101}},
		{"service type", Pool{No: "NP3", Name: "x", ServiceType: 300, SubServiceType: 101}},
		{"sub-service of the other type", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 201}},
		{"number twice", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 101, Numbers: []Number{{Number: "17000000001", StatusCode: 1}}}},
		{"number not digits", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 101, Numbers: []Number{{Number: "1700a", StatusCode: 1}}}},
		{"status", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 101, Numbers: []Number{{Number: "1", StatusCode: 5}}}},
		{"type", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 101, Numbers: []Number{{Number: "1", StatusCode: 1, TypeCode: 2}}}},
		{"bindings", Pool{No: "NP3", Name: "x", ServiceType: 100, SubServiceType: 101, Numbers: []Number{{Number: "1", StatusCode: 1, BindCount: -1}}}},
	}
	for _, tc := range bad {
		if err := s.AddPools(tc.pool); err == nil {
			t.Errorf("%s: AddPools accepted %+v", tc.name, tc.pool)
		}
	}
	if got := len(s.Pools()); got != 2 {
		t.Fatalf("refused pools changed the server: %d pools", got)
	}
	if s, err := New(WithPools(bad[0].pool)); err == nil || s != nil {
		t.Errorf("New(WithPools(%s)) = %v, %v; want an error", bad[0].name, s, err)
	}
}

// With no key given, the server accepts the project's development pair.
func TestDefaultKey(t *testing.T) {
	s, err := New(WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	r := newReq("POST", poolQuery, jsonCT, `{}`)
	c := creds()
	c.AccessKeyID, c.SecretAccessKey = DefaultAccessKeyID, DefaultSecretAccessKey
	c.Sign(r)
	if status, a := serve(t, s, r); status != http.StatusOK {
		t.Fatalf("default key refused: %+v", a.ResponseMetadata.Error)
	}
	if status, _ := serve(t, s, poolReq(`{}`)); status != http.StatusUnauthorized {
		t.Fatalf("another key got %d", status)
	}
}

func TestFaults(t *testing.T) {
	t.Run("every code", func(t *testing.T) {
		for _, code := range append(Codes(), "NoSuchCode") {
			set := fault.NewSet(1)
			set.Set("NumberList", fault.Fault{ErrorCode: code})
			s := newTestServer(t, WithFaults(set))
			status, a := serve(t, s, numReq(`{}`))
			if a.ResponseMetadata.Error == nil || a.ResponseMetadata.Error.Code != code || status != Status(code) {
				t.Fatalf("%s: got %d %+v", code, status, a.ResponseMetadata.Error)
			}
			if s.Calls("NumberList") != 1 {
				t.Fatalf("%s: Calls = %d", code, s.Calls("NumberList"))
			}
			// The other action is not faulted.
			pools(t, s, `{}`)
		}
		if Status("NoSuchCode") != http.StatusBadRequest {
			t.Fatal("an unknown code is not answered with 400")
		}
	})

	t.Run("throttled", func(t *testing.T) {
		set := fault.NewSet(1)
		set.Set("NumberPoolList", fault.Fault{QPS: 0.001, Burst: 1})
		s := newTestServer(t, WithFaults(set))
		pools(t, s, `{}`)
		status, a := serve(t, s, poolReq(`{}`))
		if status != http.StatusTooManyRequests || a.ResponseMetadata.Error.Code != "FlowLimitExceeded" || a.ResponseMetadata.Error.CodeN != 100018 {
			t.Fatalf("over the QPS: %d %+v", status, a.ResponseMetadata.Error)
		}
		if s.Calls("NumberPoolList") != 2 {
			t.Fatalf("Calls = %d, want 2", s.Calls("NumberPoolList"))
		}
	})

	t.Run("delay ends with the client", func(t *testing.T) {
		set := fault.NewSet(1)
		set.Set("NumberPoolList", fault.Fault{Latency: time.Hour})
		s := newTestServer(t, WithFaults(set))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, poolReq(`{}`).WithContext(ctx))
		if w.Body.Len() != 0 || s.Calls("NumberPoolList") != 1 {
			t.Fatalf("answered %q to a client that left; Calls %d", w.Body.String(), s.Calls("NumberPoolList"))
		}
	})

	t.Run("cut after the work", func(t *testing.T) {
		set := fault.NewSet(1)
		set.Set("NumberPoolList", fault.Fault{CutRate: 1})
		s := newTestServer(t, WithFaults(set))
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		r := poolReq(`{}`)
		r.RequestURI = ""
		r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
		resp, err := srv.Client().Do(r)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a cut call was answered: %s", resp.Status)
		}
		if s.Calls("NumberPoolList") != 1 {
			t.Fatalf("Calls = %d", s.Calls("NumberPoolList"))
		}
	})
}

// The log has one line per call, with the request id and key id but never a
// secret, a token or a signature.
func TestLogHasNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	s := newTestServer(t, WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	ok(t, s, poolReq(`{}`), new(poolPage))
	c := creds()
	c.AccessKeyID, c.SecretAccessKey, c.SessionToken = stsAK, stsSK, otherToken
	r := c.Sign(newReq("POST", poolQuery, jsonCT, `{}`))
	serve(t, s, r)
	sig := r.Header.Get("Authorization")
	sig = sig[strings.Index(sig, "Signature=")+len("Signature="):]
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["requestId"] == "" || m["accessKeyId"] == nil {
			t.Fatalf("log line %s", l)
		}
		for _, secret := range []string{testSK, stsSK, otherToken, stsToken, sig} {
			if strings.Contains(l, secret) {
				t.Fatalf("log line leaks %q: %s", secret, l)
			}
		}
	}
}
