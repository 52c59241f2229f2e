package dypls

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// FuzzServeHTTP feeds arbitrary methods, queries and form bodies to the
// emulator: it must never panic, and only a request that carries a valid
// signature by a known key may get a 2xx answer.
func FuzzServeHTTP(f *testing.F) {
	good := newReq("QuerySecretNoRemain", "SpecId", "1", "City", "杭州").signed()
	f.Add("POST", good.params.Encode(), "")
	f.Add("GET", good.params.Encode(), "")
	f.Add("POST", "", good.params.Encode())
	buy := newReq("BuySecretNo", "PoolKey", DefaultPoolKey, "SpecId", "2", "City", "全国列表").signed()
	f.Add("POST", buy.params.Encode(), "")
	f.Add("POST", "Action=BuySecretNo&Version=2017-05-25&Signature=%%%", "")
	f.Add("DELETE", "a=b", "c=%zz")
	f.Add("POST", strings.Repeat("a=1&", 100), strings.Repeat("x", 100))

	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, query, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n") {
			method = "POST"
		}
		hr := &http.Request{
			Method: method,
			URL:    &url.URL{Path: "/", RawQuery: query},
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			Body:   io.NopCloser(strings.NewReader(body)),
		}
		hr = hr.WithContext(t.Context())
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, hr)
		if rec.Code < 200 || rec.Code >= 300 {
			return
		}
		// A 2xx needs the signature of the default key over exactly what came.
		// net/http puts body values before query values, as Sign must see them.
		all := url.Values{}
		if method == http.MethodPost {
			all, _ = url.ParseQuery(body)
		}
		q, _ := url.ParseQuery(query)
		for k, v := range q {
			all[k] = append(all[k], v...)
		}
		if all.Get("Signature") == "" || Sign(method, all, DefaultAccessKeySecret) != all.Get("Signature") {
			t.Fatalf("%s %q %q answered %d without a valid signature: %s", method, query, body, rec.Code, rec.Body)
		}
	})
}
