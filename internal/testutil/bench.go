package testutil

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchQuery measures parse (a function's query decoding and validation)
// on the query string raw.
func BenchQuery(b *testing.B, raw string, parse func(url.Values) error) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		v, err := url.ParseQuery(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := parse(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchGET measures h answering GET target, which must answer 200.
func BenchGET(b *testing.B, h http.Handler, target string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
