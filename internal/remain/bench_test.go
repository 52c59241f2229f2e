package remain_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
)

// BenchmarkParseQuery is GET /remain's request decoding and validation.
func BenchmarkParseQuery(b *testing.B) {
	testutil.BenchQuery(b, "city=%E6%9D%AD%E5%B7%9E&specId=2&prefix=130", func(v url.Values) error {
		_, err := remain.ParseQuery(v)
		return err
	})
}

type benchInventory struct{}

func (benchInventory) Remain(_ context.Context, q provider.RemainQuery) (provider.RemainResult, error) {
	return provider.RemainResult{City: q.City, SpecID: q.SpecID, Prefix: q.Prefix, Amount: 42}, nil
}

// BenchmarkServeHTTP is the function's own share of a GET /remain, with a
// provider that answers at once: routing, decoding, validation, the JSON
// answer.
func BenchmarkServeHTTP(b *testing.B) {
	testutil.BenchGET(b, remain.New(aliyun.Name, benchInventory{}), "/remain?city=%E6%9D%AD%E5%B7%9E&specId=2")
}
