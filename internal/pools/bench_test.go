package pools_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// BenchmarkParseQuery is GET /pools's request decoding and validation.
func BenchmarkParseQuery(b *testing.B) {
	raw := "name=%E8%90%A5%E9%94%80&serviceType=100&subServiceType=101&offset=0&limit=20"
	b.ReportAllocs()
	for b.Loop() {
		v, err := url.ParseQuery(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pools.ParseQuery(v); err != nil {
			b.Fatal(err)
		}
	}
}

type benchLister struct{ page provider.PoolPage }

func (l benchLister) ListPools(context.Context, provider.PoolQuery) (provider.PoolPage, error) {
	return l.page, nil
}

// BenchmarkServeHTTP is the function's own share of a GET /pools, with a
// provider that answers a page of ten pools at once.
func BenchmarkServeHTTP(b *testing.B) {
	page := provider.PoolPage{Total: 10, Limit: 10}
	for i := range 10 {
		page.Records = append(page.Records, provider.Pool{PoolNo: "NP16214" + string(rune('0'+i)), Name: "营销号码池",
			ServiceType: 100, ServiceTypeName: "隐私号", SubServiceType: 101, SubServiceTypeName: "AXB", NumberCount: 639})
	}
	h := pools.New("volcengine", benchLister{page})
	req := httptest.NewRequest(http.MethodGet, "/pools?limit=10", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
