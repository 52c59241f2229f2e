package provider

import (
	"errors"
	"strings"
	"testing"
)

func TestRemainQueryValidate(t *testing.T) {
	tests := []struct {
		name  string
		q     RemainQuery
		field string // "" means valid
	}{
		{"one city", RemainQuery{City: "杭州", SpecID: 1}, ""},
		{"carrier with prefix", RemainQuery{City: "北京", SpecID: 2, Prefix: "130"}, ""},
		{"nationwide total", RemainQuery{City: CityNationwide, SpecID: 1}, ""},
		{"nationwide list", RemainQuery{City: CityNationwideList, SpecID: 2}, ""},
		{"95 numbers", RemainQuery{City: CityUniversal, SpecID: 3}, ""},
		{"95 with prefix", RemainQuery{City: CityUniversal, SpecID: 3, Prefix: "95013"}, ""},
		{"18 digit prefix", RemainQuery{City: "杭州", SpecID: 1, Prefix: strings.Repeat("1", 18)}, ""},
		{"latin city", RemainQuery{City: "Hangzhou", SpecID: 1}, ""},
		{"spec 0", RemainQuery{City: "杭州"}, "specId"},
		{"spec 4", RemainQuery{City: "杭州", SpecID: 4}, "specId"},
		{"spec negative", RemainQuery{City: "杭州", SpecID: -1}, "specId"},
		{"no city", RemainQuery{SpecID: 1}, "city"},
		{"95 in a city", RemainQuery{City: "杭州", SpecID: 3}, "city"},
		{"95 nationwide", RemainQuery{City: CityNationwide, SpecID: 3}, "city"},
		{"universal for spec 1", RemainQuery{City: CityUniversal, SpecID: 1}, "city"},
		{"universal for spec 2", RemainQuery{City: CityUniversal, SpecID: 2}, "city"},
		{"city with digits", RemainQuery{City: "杭州1", SpecID: 1}, "city"},
		{"city with space", RemainQuery{City: "杭 州", SpecID: 1}, "city"},
		{"city with punctuation", RemainQuery{City: "杭州;drop", SpecID: 1}, "city"},
		{"city not utf8", RemainQuery{City: "\xff\xfe", SpecID: 1}, "city"},
		{"city with CR", RemainQuery{City: "杭州\r", SpecID: 1}, "city"},
		{"city too long", RemainQuery{City: strings.Repeat("杭", 33), SpecID: 1}, "city"},
		{"prefix letters", RemainQuery{City: "杭州", SpecID: 1, Prefix: "13a"}, "prefix"},
		{"prefix plus", RemainQuery{City: "杭州", SpecID: 1, Prefix: "+86"}, "prefix"},
		{"prefix 19 digits", RemainQuery{City: "杭州", SpecID: 1, Prefix: strings.Repeat("1", 19)}, "prefix"},
		{"prefix full-width digits", RemainQuery{City: "杭州", SpecID: 1, Prefix: "１３０"}, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkField(t, tt.q.Validate(), tt.field) })
	}
}

func TestBuyRequestValidate(t *testing.T) {
	ok := BuyRequest{PoolKey: "FC123456", City: "杭州", SpecID: 1}
	tests := []struct {
		name  string
		edit  func(*BuyRequest)
		field string
	}{
		{"valid", func(*BuyRequest) {}, ""},
		{"valid with prefix and display pool", func(r *BuyRequest) { r.Prefix = "170"; r.DisplayPool = true }, ""},
		{"95 number", func(r *BuyRequest) { r.City = CityUniversal; r.SpecID = 3 }, ""},
		{"no pool key", func(r *BuyRequest) { r.PoolKey = "" }, "poolKey"},
		{"pool key with space", func(r *BuyRequest) { r.PoolKey = "FC 1" }, "poolKey"},
		{"pool key too long", func(r *BuyRequest) { r.PoolKey = strings.Repeat("F", 65) }, "poolKey"},
		{"pool key not ascii", func(r *BuyRequest) { r.PoolKey = "号码池" }, "poolKey"},
		{"no spec", func(r *BuyRequest) { r.SpecID = 0 }, "specId"},
		{"no city", func(r *BuyRequest) { r.City = "" }, "city"},
		{"buy nationwide", func(r *BuyRequest) { r.City = CityNationwide }, "city"},
		{"buy nationwide list", func(r *BuyRequest) { r.City = CityNationwideList }, "city"},
		{"95 in a city", func(r *BuyRequest) { r.SpecID = 3 }, "city"},
		{"universal for spec 2", func(r *BuyRequest) { r.City = CityUniversal; r.SpecID = 2 }, "city"},
		{"bad prefix", func(r *BuyRequest) { r.Prefix = "17O" }, "prefix"},
		{"pool key with CRLF", func(r *BuyRequest) { r.PoolKey = "FC1\r\nX" }, "poolKey"},
		{"city with LF", func(r *BuyRequest) { r.City = "杭州\n" }, "city"},
		{"prefix with NUL", func(r *BuyRequest) { r.Prefix = "170\x00" }, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			checkField(t, r.Validate(), tt.field)
		})
	}
}

func TestPoolQueryValidate(t *testing.T) {
	tests := []struct {
		name  string
		q     PoolQuery
		field string
	}{
		{"empty", PoolQuery{}, ""},
		{"all filters", PoolQuery{PoolNo: "NP1", Name: "营销号码池", ServiceType: 100, SubServiceType: 101, Offset: 20, Limit: 100}, ""},
		{"limit 1", PoolQuery{Limit: 1}, ""},
		{"negative offset", PoolQuery{Offset: -1}, "offset"},
		{"limit 101", PoolQuery{Limit: 101}, "limit"},
		{"negative limit", PoolQuery{Limit: -5}, "limit"},
		{"negative service type", PoolQuery{ServiceType: -1}, "serviceType"},
		{"negative sub service type", PoolQuery{SubServiceType: -1}, "subServiceType"},
		{"long pool no", PoolQuery{PoolNo: strings.Repeat("N", 65)}, "poolNo"},
		{"long name", PoolQuery{Name: strings.Repeat("池", 65)}, "name"},
		{"name not utf8", PoolQuery{Name: "\xff"}, "name"},
		{"pool no with CRLF", PoolQuery{PoolNo: "NP1\r\nX-Injected: 1"}, "poolNo"},
		{"pool no with NUL", PoolQuery{PoolNo: "NP1\x00"}, "poolNo"},
		{"name with LF", PoolQuery{Name: "池\n伪造日志"}, "name"},
		{"name with DEL", PoolQuery{Name: "池\x7f"}, "name"},
		{"name with C1 control", PoolQuery{Name: "池\u0085"}, "name"},
		{"name with line separator", PoolQuery{Name: "池\u2028"}, "name"},
		{"name with tab", PoolQuery{Name: "a\tb"}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkField(t, tt.q.Validate(), tt.field) })
	}
	if got := (PoolQuery{}).WithDefaults().Limit; got != DefaultLimit {
		t.Errorf("default limit = %d, want %d", got, DefaultLimit)
	}
	if got := (PoolQuery{Limit: 7}).WithDefaults().Limit; got != 7 {
		t.Errorf("WithDefaults changed a given limit to %d", got)
	}
}

func TestNumberQueryValidate(t *testing.T) {
	tests := []struct {
		name  string
		q     NumberQuery
		field string
	}{
		{"empty", NumberQuery{}, ""},
		{"numbers", NumberQuery{PoolNo: "NP1", Numbers: []string{"13000000000"}, Limit: 5}, ""},
		{"negative offset", NumberQuery{Offset: -1}, "offset"},
		{"limit 0 is default", NumberQuery{Limit: 0}, ""},
		{"limit too big", NumberQuery{Limit: 1000}, "limit"},
		{"bad number", NumberQuery{Numbers: []string{"130-0000"}}, "numbers"},
		{"pool no with LF", NumberQuery{PoolNo: "NP1\nx"}, "poolNo"},
		{"pool no not utf8", NumberQuery{PoolNo: "NP\xff"}, "poolNo"},
		{"empty number", NumberQuery{Numbers: []string{""}}, "numbers"},
		{"too many numbers", NumberQuery{Numbers: make([]string, 101)}, "numbers"},
		{"negative status", NumberQuery{StatusCode: -1}, "poolType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkField(t, tt.q.Validate(), tt.field) })
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *Error naming %q, got %v", field, err)
	}
	if !errors.Is(err, ErrInvalidParameter) || e.Field != field {
		t.Fatalf("got kind %q field %q (%v), want InvalidParameter on %q", e.Kind, e.Field, err, field)
	}
	if !strings.Contains(e.Error(), field) {
		t.Errorf("message %q does not name the field %q", e.Error(), field)
	}
}

// FuzzRemainQuery checks that validation never panics and that whatever it
// accepts keeps the seeds' rules.
func FuzzRemainQuery(f *testing.F) {
	f.Add("杭州", 1, "130")
	f.Add(CityNationwideList, 2, "")
	f.Add(CityUniversal, 3, "95")
	f.Add("", 0, "x")
	f.Fuzz(func(t *testing.T, city string, spec int, prefix string) {
		q := RemainQuery{City: city, SpecID: SpecID(spec), Prefix: prefix}
		err := q.Validate()
		if err != nil {
			if !errors.Is(err, ErrInvalidParameter) {
				t.Fatalf("refusal is not InvalidParameter: %v", err)
			}
			return
		}
		if spec < 1 || spec > 3 || city == "" || len(prefix) > MaxPrefixLen {
			t.Fatalf("accepted %+v", q)
		}
		if (spec == 3) != (city == CityUniversal) {
			t.Fatalf("accepted a 95/全国通用 mismatch: %+v", q)
		}
		for _, c := range prefix {
			if c < '0' || c > '9' {
				t.Fatalf("accepted non-digit prefix %q", prefix)
			}
		}
		// A buy of the same may only be stricter.
		b := BuyRequest{PoolKey: "FC1", City: city, SpecID: SpecID(spec), Prefix: prefix}
		if b.Validate() != nil && city != CityNationwide && city != CityNationwideList {
			t.Fatalf("query accepted but buy refused %+v: %v", b, b.Validate())
		}
	})
}

// FuzzPoolQuery checks the paging bounds hold for any input.
func FuzzPoolQuery(f *testing.F) {
	f.Add("NP1", "营销号码池", 100, 101, 0, 10)
	f.Add("", "", -1, 0, -1, 1000)
	f.Fuzz(func(t *testing.T, no, name string, st, sst, off, lim int) {
		q := PoolQuery{PoolNo: no, Name: name, ServiceType: st, SubServiceType: sst, Offset: off, Limit: lim}
		if q.Validate() != nil {
			return
		}
		d := q.WithDefaults()
		if d.Offset < 0 || d.Limit < 1 || d.Limit > MaxLimit {
			t.Fatalf("accepted paging offset %d limit %d", d.Offset, d.Limit)
		}
	})
}

func TestSpecOfNumber(t *testing.T) {
	for no, want := range map[string]SpecID{
		"17000000001": SpecVirtual, "17100000001": SpecVirtual, "16500000001": SpecVirtual,
		"13000000001": SpecCarrier, "18912345678": SpecCarrier, "17700000001": SpecCarrier,
		"9510000001": Spec95, "95013001": Spec95,
		"": 0, "1300000000": 0, "23000000001": 0, "1700000000x": 0,
	} {
		if got := SpecOfNumber(no); got != want {
			t.Errorf("SpecOfNumber(%q) = %d, want %d", no, got, want)
		}
	}
}
