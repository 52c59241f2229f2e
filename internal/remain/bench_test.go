package remain_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// BenchmarkParseQuery is GET /remain's request decoding and validation.
func BenchmarkParseQuery(b *testing.B) {
	raw := "city=%E6%9D%AD%E5%B7%9E&specId=2&prefix=130"
	b.ReportAllocs()
	for b.Loop() {
		v, err := url.ParseQuery(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := remain.ParseQuery(v); err != nil {
			b.Fatal(err)
		}
	}
}

type benchInventory struct{}

func (benchInventory) Remain(_ context.Context, q provider.RemainQuery) (provider.RemainResult, error) {
	return provider.RemainResult{City: q.City, SpecID: q.SpecID, Prefix: q.Prefix, Amount: 42}, nil
}

// BenchmarkServeHTTP is the function's own share of a GET /remain, with a
// provider that answers at once: routing, decoding, validation, the JSON
// answer.
func BenchmarkServeHTTP(b *testing.B) {
	h := remain.New("aliyun", benchInventory{})
	req := httptest.NewRequest(http.MethodGet, "/remain?city=%E6%9D%AD%E5%B7%9E&specId=2", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
