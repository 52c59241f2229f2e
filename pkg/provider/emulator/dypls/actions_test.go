package dypls

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func remainOf(t *testing.T, s *Server, spec, city, prefix string) map[string]any {
	t.Helper()
	r := newReq("QuerySecretNoRemain", "SpecId", spec, "City", city)
	if prefix != "" {
		r.set("SecretNo", prefix)
	}
	a := serve(t, s, r.signed())
	if a.status != 200 || a.code() != "OK" {
		t.Fatalf("remain %s %s %s: %s", spec, city, prefix, a.raw)
	}
	return dto(t, a.body, "SecretRemainDTO")
}

func amount(m map[string]any) int64 { return int64(m["Amount"].(float64)) }

// countSeed counts the default seed the slow, obvious way.
func countSeed(spec int, city, prefix string) int64 {
	var n int64
	for _, x := range DefaultNumbers() {
		if x.SpecID == spec && (city == "" || x.City == city) && strings.HasPrefix(x.SecretNo, prefix) {
			n++
		}
	}
	return n
}

func TestDefaultSeed(t *testing.T) {
	nums := DefaultNumbers()
	if len(nums) < 200 {
		t.Fatalf("seed has %d numbers, want a few hundred", len(nums))
	}
	seen := map[string]bool{}
	for _, n := range nums {
		if err := n.validate(); err != nil {
			t.Fatal(err)
		}
		if seen[n.SecretNo] {
			t.Fatalf("%s twice", n.SecretNo)
		}
		seen[n.SecretNo] = true
		switch n.SpecID {
		case SpecVirtual:
			if !strings.HasPrefix(n.SecretNo, "170") && !strings.HasPrefix(n.SecretNo, "171") {
				t.Errorf("virtual number %s is not 170/171", n.SecretNo)
			}
		case Spec95:
			if !strings.HasPrefix(n.SecretNo, "95") {
				t.Errorf("95 number %s", n.SecretNo)
			}
		}
		if n.SpecID != Spec95 && n.Province == "" {
			t.Errorf("%s has no province", n.SecretNo)
		}
	}
	if countSeed(SpecVirtual, "拉萨", "")+countSeed(SpecCarrier, "拉萨", "") != 0 {
		t.Error("拉萨 should have no stock")
	}
}

func TestRemain(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		spec, city, prefix string
		want               int64
	}{
		{"1", "杭州", "", countSeed(1, "杭州", "")},
		{"2", "杭州", "", countSeed(2, "杭州", "")},
		{"1", "成都", "", 0},
		{"1", "拉萨", "", 0},
		{"1", "纽约", "", 0},
		{"1", "全国", "", countSeed(1, "", "")},
		{"2", "全国", "", countSeed(2, "", "")},
		{"3", "全国通用", "", countSeed(3, "", "")},
		{"2", "杭州", "130", countSeed(2, "杭州", "130")},
		{"2", "全国", "186", countSeed(2, "", "186")},
		{"1", "全国", "1709", countSeed(1, "", "1709")},
		{"2", "杭州", "999", 0},
		{"3", "全国通用", "9501300000", countSeed(3, "", "9501300000")},
	}
	for _, tt := range tests {
		got := remainOf(t, s, tt.spec, tt.city, tt.prefix)
		if amount(got) != tt.want || got["City"] != tt.city {
			t.Errorf("remain(%s, %s, %q) = %v, want Amount %d", tt.spec, tt.city, tt.prefix, got, tt.want)
		}
		if tt.want == 0 && tt.prefix == "" && tt.city != "纽约" && tt.city != "拉萨" && tt.city != "成都" {
			t.Errorf("test data: %v has no stock", tt)
		}
		if _, listed := got["RemainDTOList"]; listed {
			t.Errorf("RemainDTOList outside 全国列表: %v", got)
		}
	}
}

func TestRemainNationwideList(t *testing.T) {
	s := newTestServer(t)
	for _, spec := range []int{SpecVirtual, SpecCarrier} {
		got := remainOf(t, s, string(rune('0'+spec)), "全国列表", "")
		list := dto(t, got, "RemainDTOList")["remainDTO"].([]any)
		var sum int64
		var cities []string
		prev := int64(1 << 62)
		for _, e := range list {
			m := e.(map[string]any)
			a := amount(m)
			city := m["City"].(string)
			if a <= 0 {
				t.Errorf("spec %d: listed a city without stock: %v", spec, m)
			}
			if a != countSeed(spec, city, "") {
				t.Errorf("spec %d %s: %d, want %d", spec, city, a, countSeed(spec, city, ""))
			}
			if a > prev {
				t.Errorf("spec %d: not by falling stock: %v", spec, list)
			}
			prev = a
			sum += a
			cities = append(cities, city)
		}
		if amount(got) != sum || sum != countSeed(spec, "", "") {
			t.Errorf("spec %d: Amount %d, sum %d, seed %d", spec, amount(got), sum, countSeed(spec, "", ""))
		}
		if slices.Contains(cities, "拉萨") || (spec == SpecVirtual && slices.Contains(cities, "成都")) {
			t.Errorf("spec %d lists a city without stock: %v", spec, cities)
		}
	}
	// A prefix nothing matches lists nothing.
	got := remainOf(t, s, "2", "全国列表", "999")
	if amount(got) != 0 || len(dto(t, got, "RemainDTOList")["remainDTO"].([]any)) != 0 {
		t.Errorf("empty list: %v", got)
	}
}

func TestBusinessRefusals(t *testing.T) {
	buy := func(kv ...string) *req {
		r := newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州")
		for i := 0; i+1 < len(kv); i += 2 {
			r.set(kv[i], kv[i+1])
		}
		return r
	}
	remain := func(kv ...string) *req {
		r := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州")
		for i := 0; i+1 < len(kv); i += 2 {
			r.set(kv[i], kv[i+1])
		}
		return r
	}
	tests := []struct {
		name   string
		req    *req
		status int
		code   string
	}{
		{"remain no spec", remain().del("SpecId"), 400, "MissingSpecId"},
		{"remain no city", remain().del("City"), 400, "MissingCity"},
		{"remain empty city", remain("City", ""), 400, "MissingCity"},
		{"remain spec 4", remain("SpecId", "4"), 200, "isv.INVALID_PARAMETERS"},
		{"remain spec x", remain("SpecId", "x"), 200, "isv.INVALID_PARAMETERS"},
		{"remain spec 3 city", remain("SpecId", "3"), 200, "isv.INVALID_PARAMETERS"},
		{"remain spec 3 全国", remain("SpecId", "3", "City", "全国"), 200, "isv.INVALID_PARAMETERS"},
		{"remain 全国通用 spec 1", remain("City", "全国通用"), 200, "isv.INVALID_PARAMETERS"},
		{"remain prefix 19", remain("SecretNo", strings.Repeat("1", 19)), 200, "isv.INVALID_PARAMETERS"},
		{"remain prefix letters", remain("SecretNo", "13a"), 200, "isv.INVALID_PARAMETERS"},
		{"remain long city", remain("City", strings.Repeat("杭", 33)), 200, "isv.INVALID_PARAMETERS"},
		{"buy no pool", buy().del("PoolKey"), 400, "MissingPoolKey"},
		{"buy no spec", buy().del("SpecId"), 400, "MissingSpecId"},
		{"buy no city", buy().del("City"), 400, "MissingCity"},
		{"buy unknown pool", buy("PoolKey", "FC999"), 200, "isv.POOLKEY_NOT_EXISTS"},
		{"buy 全国", buy("City", "全国"), 200, "isv.INVALID_PARAMETERS"},
		{"buy 全国列表", buy("City", "全国列表"), 200, "isv.INVALID_PARAMETERS"},
		{"buy spec 3 杭州", buy("SpecId", "3"), 200, "isv.INVALID_PARAMETERS"},
		{"buy no stock", buy("City", "拉萨"), 200, "isv.NO_AVAILABLE_NUMBER"},
		{"buy no stock of spec", buy("City", "成都"), 200, "isv.NO_AVAILABLE_NUMBER"},
		{"buy prefix without stock", buy("SecretNo", "1999"), 200, "isv.NO_AVAILABLE_NUMBER"},
		{"buy prefix 19", buy("SecretNo", strings.Repeat("1", 19)), 200, "isv.INVALID_PARAMETERS"},
		{"buy display pool", buy("DisplayPool", "maybe"), 200, "isv.INVALID_PARAMETERS"},
		{"detail no number", newReq("QuerySecretNoDetail", "PoolKey", DefaultPoolKey), 400, "MissingSecretNo"},
		{"detail no pool", newReq("QuerySecretNoDetail", "SecretNo", "17000100000"), 400, "MissingPoolKey"},
		{"detail unknown pool", newReq("QuerySecretNoDetail", "SecretNo", "17000100000", "PoolKey", "FC9"), 200, "isv.POOLKEY_NOT_EXISTS"},
		{"detail not in pool", newReq("QuerySecretNoDetail", "SecretNo", "17000100000", "PoolKey", DefaultPoolKey), 200, "isv.NO_NOT_EXIST"},
		{"detail bad number", newReq("QuerySecretNoDetail", "SecretNo", "abc", "PoolKey", DefaultPoolKey), 200, "isv.INVALID_PARAMETERS"},
		{"release not in pool", newReq("ReleaseSecretNo", "SecretNo", "17000100000", "PoolKey", DefaultPoolKey), 200, "isv.NO_NOT_EXIST"},
		{"release unknown pool", newReq("ReleaseSecretNo", "SecretNo", "17000100000", "PoolKey", "FC9"), 200, "isv.POOLKEY_NOT_EXISTS"},
		{"release no number", newReq("ReleaseSecretNo", "PoolKey", DefaultPoolKey), 400, "MissingSecretNo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			before := len(s.Stock())
			a := serve(t, s, tt.req.signed())
			if a.status != tt.status || a.code() != tt.code {
				t.Fatalf("got %d %q, want %d %q: %s", a.status, a.code(), tt.status, tt.code, a.raw)
			}
			if a.body["RequestId"] == "" || a.body["Message"] == "" {
				t.Errorf("no RequestId or Message: %s", a.raw)
			}
			if len(s.Stock()) != before || len(s.Purchases()) != 0 || len(s.Reports()) != 0 {
				t.Errorf("a refused call changed state")
			}
		})
	}
}

func TestBuyDetailRelease(t *testing.T) {
	var hooked []Report // the hook runs under the emulator's lock: no race
	s := newTestServer(t, WithPool("FC200"), WithReportHook(func(r Report) { hooked = append(hooked, r) }))
	hz := countSeed(SpecCarrier, "杭州", "186")
	a := serve(t, s, newReq("BuySecretNo", "PoolKey", "FC200", "SpecId", "2", "City", "杭州", "SecretNo", "186", "DisplayPool", "true").signed())
	if a.code() != "OK" {
		t.Fatalf("buy: %s", a.raw)
	}
	no := dto(t, a.body, "SecretBuyInfoDTO")["SecretNo"].(string)
	if !strings.HasPrefix(no, "186") {
		t.Fatalf("bought %s, want a 186 number", no)
	}
	if got := amount(remainOf(t, s, "2", "杭州", "186")); got != hz-1 {
		t.Fatalf("remain after buy = %d, want %d", got, hz-1)
	}
	p := s.Purchases()
	if len(p) != 1 || p[0].SecretNo != no || p[0].PoolKey != "FC200" || p[0].City != "杭州" || p[0].SpecID != 2 ||
		!p[0].DisplayPool || p[0].RequestID != a.body["RequestId"] || !p[0].Time.Equal(fixedNow) {
		t.Fatalf("purchases = %+v", p)
	}

	// The number is in FC200, not in the default pool.
	a = serve(t, s, newReq("QuerySecretNoDetail", "SecretNo", no, "PoolKey", DefaultPoolKey).signed())
	if a.code() != "isv.NO_NOT_EXIST" {
		t.Fatalf("detail in another pool: %s", a.raw)
	}
	a = serve(t, s, newReq("QuerySecretNoDetail", "SecretNo", no, "PoolKey", "FC200").signed())
	d := dto(t, a.body, "SecretNoInfoDTO")
	if d["PurchaseTime"] != "2026-03-01 16:00:00" || d["City"] != "杭州" || d["Province"] != "浙江" ||
		d["Vendor"] != float64(VendorUnicom) || d["SecretStatus"] != float64(0) || d["CertifyStatus"] != float64(0) {
		t.Fatalf("detail = %v", d)
	}

	a = serve(t, s, newReq("ReleaseSecretNo", "SecretNo", no, "PoolKey", "FC200").signed())
	if a.code() != "OK" {
		t.Fatalf("release: %s", a.raw)
	}
	a = serve(t, s, newReq("QuerySecretNoDetail", "SecretNo", no, "PoolKey", "FC200").signed())
	if a.code() != "isv.NO_NOT_EXIST" {
		t.Fatalf("detail after release: %s", a.raw)
	}
	a = serve(t, s, newReq("ReleaseSecretNo", "SecretNo", no, "PoolKey", "FC200").signed())
	if a.code() != "isv.NO_NOT_EXIST" {
		t.Fatalf("second release: %s", a.raw)
	}
	// Released numbers are not resold.
	if got := amount(remainOf(t, s, "2", "杭州", "186")); got != hz-1 {
		t.Fatalf("remain after release = %d, want %d", got, hz-1)
	}
	want := []Report{
		{SecretNo: no, City: "杭州", PartnerKey: "FC200", OperatingTime: "2026-03-01 16:00:00", Status: ReportCreated, Vendor: VendorUnicom},
		{SecretNo: no, City: "杭州", PartnerKey: "FC200", OperatingTime: "2026-03-01 16:00:00", Status: ReportDeleted, Vendor: VendorUnicom},
	}
	if got := s.Reports(); !slices.Equal(got, want) {
		t.Fatalf("reports = %+v, want %+v", got, want)
	}
	if !slices.Equal(hooked, want) {
		t.Fatalf("the report hook saw %+v, want %+v", hooked, want)
	}
}

func TestBuyUntilEmpty(t *testing.T) {
	s := newTestServer(t, WithNumbers(
		Number{SecretNo: "17000000001", SpecID: 1, City: "杭州", Province: "浙江", Vendor: VendorTelecom},
		Number{SecretNo: "17000000002", SpecID: 1, City: "杭州", Province: "浙江", Vendor: VendorTelecom},
		Number{SecretNo: "950000000001", SpecID: 3, City: CityUniversal},
	))
	var got []string
	for range 2 {
		a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
		got = append(got, dto(t, a.body, "SecretBuyInfoDTO")["SecretNo"].(string))
	}
	if !slices.Equal(got, []string{"17000000001", "17000000002"}) {
		t.Fatalf("bought %v", got)
	}
	a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
	if a.code() != "isv.NO_AVAILABLE_NUMBER" {
		t.Fatalf("empty: %s", a.raw)
	}
	a = serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "3", "City", CityUniversal).signed())
	if a.code() != "OK" || dto(t, a.body, "SecretBuyInfoDTO")["SecretNo"] != "950000000001" {
		t.Fatalf("95: %s", a.raw)
	}

	// Stock added at runtime is sold.
	if err := s.AddNumbers(Number{SecretNo: "17000000003", SpecID: 1, City: "杭州"}); err != nil {
		t.Fatal(err)
	}
	a = serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
	if a.code() != "OK" {
		t.Fatalf("after AddNumbers: %s", a.raw)
	}
}

func TestAddNumbersRefusesBadInput(t *testing.T) {
	tests := []Number{
		{SecretNo: "", SpecID: 1, City: "杭州"},
		{SecretNo: "17x", SpecID: 1, City: "杭州"},
		{SecretNo: "17000000009", SpecID: 4, City: "杭州"},
		{SecretNo: "17000000009", SpecID: 1, City: ""},
		{SecretNo: "17000000009", SpecID: 1, City: "全国"},
		{SecretNo: "17000000009", SpecID: 1, City: CityUniversal},
		{SecretNo: "950000000009", SpecID: 3, City: "杭州"},
		{SecretNo: "17000100000", SpecID: 1, City: "杭州"}, // in the default seed
	}
	for _, n := range tests {
		s := newTestServer(t)
		before := len(s.Stock())
		if err := s.AddNumbers(Number{SecretNo: "17099999999", SpecID: 1, City: "杭州"}, n); err == nil {
			t.Errorf("AddNumbers(%+v) accepted", n)
		}
		if len(s.Stock()) != before {
			t.Errorf("AddNumbers(%+v) added part of the batch", n)
		}
	}
	s := newTestServer(t)
	a := serve(t, s, newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "1", "City", "杭州").signed())
	no := dto(t, a.body, "SecretBuyInfoDTO")["SecretNo"].(string)
	if err := s.AddNumbers(Number{SecretNo: no, SpecID: 1, City: "杭州"}); err == nil {
		t.Error("a sold number was stocked again")
	}
}

func TestWithNumbersNoneIsEmpty(t *testing.T) {
	s := newTestServer(t, WithNumbers())
	if len(s.Stock()) != 0 {
		t.Fatal("WithNumbers() should start empty")
	}
	if got := amount(remainOf(t, s, "1", "全国", "")); got != 0 {
		t.Fatalf("remain = %d", got)
	}
}

// A seed New cannot stock is an error, not a panic.
func TestNewRefusesABadSeed(t *testing.T) {
	for name, nums := range map[string][]Number{
		"not digits":   {{SecretNo: "1700x", SpecID: SpecVirtual, City: "杭州"}},
		"given twice":  {{SecretNo: "17000000001", SpecID: SpecVirtual, City: "杭州"}, {SecretNo: "17000000001", SpecID: SpecVirtual, City: "杭州"}},
		"95 in a city": {{SecretNo: "95000000001", SpecID: Spec95, City: "杭州"}},
	} {
		if s, err := New(WithNumbers(nums...)); err == nil || s != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, s, err)
		}
	}
}

func TestSTSTokenAccepted(t *testing.T) {
	s := newTestServer(t, WithSTSTokenUntil("STS.k", "s", "tok", fixedNow.Add(time.Hour)))
	a := serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").key("STS.k", "s").set("SecurityToken", "tok").signed())
	if a.code() != "OK" {
		t.Fatalf("sts: %s", a.raw)
	}
	// Only the configured keys: the default pair is not accepted alongside.
	a = serve(t, s, newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed())
	if a.code() != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("default key with explicit keys: %s", a.raw)
	}
}
