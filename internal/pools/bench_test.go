package pools_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// BenchmarkParseQuery is GET /pools's request decoding and validation.
func BenchmarkParseQuery(b *testing.B) {
	testutil.BenchQuery(b, "name=%E8%90%A5%E9%94%80&serviceType=100&subServiceType=101&offset=0&limit=20", func(v url.Values) error {
		_, err := pools.ParseQuery(v)
		return err
	})
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
	testutil.BenchGET(b, pools.New(volcengine.Name, benchLister{page}), "/pools?limit=10")
}
