package remain_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// fake is an Inventory that records the queries it got.
type fake struct {
	mu      sync.Mutex
	queries []provider.RemainQuery
	res     provider.RemainResult
	err     error
}

func (f *fake) Remain(_ context.Context, q provider.RemainQuery) (provider.RemainResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return f.res, f.err
}

func get(t *testing.T, h http.Handler, target string) (int, []byte) {
	t.Helper()
	srv := httptest.NewServer(httpjson.Wrap(h, logging.New(&strings.Builder{}, logging.Options{})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

func TestParseQueryErrors(t *testing.T) {
	f := &fake{}
	h := remain.New("aliyun", f)
	for _, tc := range []struct {
		query string
		field string
	}{
		{"?city=杭州&specId=x", "specId"},
		{"?city=杭州", "specId"},
		{"?city=杭州&specId=4", "specId"},
		{"?specId=1", "city"},
		{"?city=杭州&specId=1&prefix=13a", "prefix"},
		{"?city=杭州&specId=1&prefix=1234567890123456789", "prefix"},
		{"?city=杭州&specId=1&specId=2", "specId"},
		{"?city=杭州&specId=1&spec=1", "spec"},
		{"?city=北京&specId=3", "city"},
		{"?city=" + url.QueryEscape("杭 州") + "&specId=1", "city"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, body := get(t, h, "/remain"+tc.query)
			var eb httpjson.ErrorBody
			if status != 400 || json.Unmarshal(body, &eb) != nil || eb.Error.Code != "InvalidParameter" || !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("status %d body %s, want 400 naming %s", status, body, tc.field)
			}
		})
	}
	if len(f.queries) != 0 {
		t.Errorf("invalid queries reached the provider: %v", f.queries)
	}
}

func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		query  string
		res    provider.RemainResult
		err    error
		status int
		want   string
	}{
		{"one city", "?city=" + url.QueryEscape("杭州") + "&specId=1", provider.RemainResult{Amount: 12}, nil, 200,
			`{"provider":"aliyun","city":"杭州","specId":1,"prefix":"","amount":12}`},
		{"prefix", "?city=" + url.QueryEscape("杭州") + "&specId=2&prefix=130", provider.RemainResult{Amount: 3}, nil, 200,
			`{"provider":"aliyun","city":"杭州","specId":2,"prefix":"130","amount":3}`},
		{"list sums", "?city=" + url.QueryEscape("全国列表") + "&specId=1", provider.RemainResult{Amount: 99, Cities: []provider.CityAmount{{City: "北京", Amount: 5}, {City: "杭州", Amount: 7}}}, nil, 200,
			`{"provider":"aliyun","city":"全国列表","specId":1,"prefix":"","amount":12,"cities":[{"city":"北京","amount":5},{"city":"杭州","amount":7}]}`},
		{"list empty", "?city=" + url.QueryEscape("全国列表") + "&specId=2", provider.RemainResult{}, nil, 200,
			`{"provider":"aliyun","city":"全国列表","specId":2,"prefix":"","amount":0,"cities":[]}`},
		{"throttled", "?city=" + url.QueryEscape("杭州") + "&specId=1", provider.RemainResult{},
			&provider.Error{Kind: provider.ErrThrottled, Provider: "aliyun", Message: "Request was denied due to user flow control."}, 429, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := remain.New("aliyun", &fake{res: tc.res, err: tc.err})
			status, body := get(t, h, "/remain"+tc.query)
			if status != tc.status {
				t.Fatalf("status %d body %s", status, body)
			}
			if tc.want != "" && string(body) != tc.want {
				t.Errorf("body\n got %s\nwant %s", body, tc.want)
			}
		})
	}
}

func TestEndpointJSON(t *testing.T) {
	f := &fake{res: provider.RemainResult{Amount: 4}}
	ep := remain.New("aliyun", f).Endpoint()
	if ep.Subject != "xnum.remain" {
		t.Errorf("subject %s", ep.Subject)
	}
	out, err := ep.Handle(context.Background(), []byte(`{"city":"杭州","specId":1,"prefix":"170"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(remain.Response); r.Amount != 4 || r.Prefix != "170" || r.Provider != "aliyun" {
		t.Errorf("answer %+v", r)
	}
	for _, bad := range []string{``, `{"city":"杭州","specId":"1"}`, `{"city":"杭州","specId":1,"spec":1}`, `{"city":"杭州","specId":9}`} {
		if _, err := ep.Handle(context.Background(), []byte(bad)); provider.KindOf(err) != provider.ErrInvalidParameter {
			t.Errorf("Handle(%s) = %v, want InvalidParameter", bad, err)
		}
	}
}
