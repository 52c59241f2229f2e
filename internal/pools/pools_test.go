package pools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc/natsrpctest"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/vms"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// fake is a Lister that records the queries it got.
type fake struct {
	mu      sync.Mutex
	queries []provider.PoolQuery
}

func (f *fake) ListPools(_ context.Context, q provider.PoolQuery) (provider.PoolPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return provider.PoolPage{}, nil
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, b := testutil.Do(t, "GET", url, "")
	return resp.StatusCode, bytes.TrimSpace(b)
}

func TestQueryErrors(t *testing.T) {
	f := &fake{}
	base := functiontest.Serve(t, pools.New(volcengine.Name, f).Function(), io.Discard)
	for _, tc := range []struct{ query, field string }{
		{"?offset=x", "offset"},
		{"?limit=0", "limit"},
		{"?limit=101", "limit"},
		{"?offset=-1", "offset"},
		{"?serviceType=voice", "serviceType"},
		{"?subServiceType=1.5", "subServiceType"},
		{"?limit=1&limit=2", "limit"},
		{"?page=2", "page"},
		{"?poolNo=" + strings.Repeat("N", 65), "poolNo"},
		{"?poolNo=NP1%0D%0AX-Injected:%201", "poolNo"},
		{"?name=%E6%B1%A0%0A%7B%22level%22%3A%22ERROR%22%7D", "name"},
		{"?name=%00", "name"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, body := get(t, base+"/pools"+tc.query)
			var eb httpjson.ErrorBody
			if status != 400 || json.Unmarshal(body, &eb) != nil || eb.Error.Code != "InvalidParameter" || !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("status %d body %s, want 400 naming %s", status, body, tc.field)
			}
		})
	}
	if len(f.queries) != 0 {
		t.Errorf("invalid queries reached the provider: %v", f.queries)
	}
	// Without a number lister the numbers route does not exist.
	if status, _ := get(t, base+"/pools/NP1/numbers"); status != 404 {
		t.Errorf("numbers route without a lister: %d", status)
	}
	// An empty page is an empty array, not null.
	status, body := get(t, base+"/pools")
	if status != 200 || string(body) != `{"provider":"volcengine","total":0,"offset":0,"limit":10,"records":[]}` {
		t.Errorf("empty page: %d %s", status, body)
	}
}

func volcClient(t *testing.T, emu *emulatortest.Server) *volcengine.Client {
	t.Helper()
	cfg := emu.VolcengineConfig()
	cfg.MaxRetries = -1
	c, err := volcengine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEndToEnd(t *testing.T) {
	emu := emulatortest.NewServer(t)
	client := volcClient(t, emu)
	base := functiontest.Serve(t, pools.New(volcengine.Name, client, pools.WithNumbers(client)).Function(), io.Discard)
	all := vms.DefaultPools()

	t.Run("first page", func(t *testing.T) {
		status, body := get(t, base+"/pools")
		var got pools.Response
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("status %d body %s", status, body)
		}
		if got.Provider != "volcengine" || got.Total != len(all) || got.Offset != 0 || got.Limit != 10 || len(got.Records) != 10 {
			t.Fatalf("page %+v", got)
		}
		r := got.Records[0]
		if r.PoolNo == "" || r.Name == "" || r.ServiceTypeName == "" || r.SubServiceTypeName == "" {
			t.Errorf("record %+v", r)
		}
	})

	t.Run("every page", func(t *testing.T) {
		seen := map[string]int{}
		for offset := 0; offset < len(all); offset += 7 {
			status, body := get(t, base+"/pools?limit=7&offset="+itoa(offset))
			var got pools.Response
			if status != 200 || json.Unmarshal(body, &got) != nil {
				t.Fatalf("status %d body %s", status, body)
			}
			for _, r := range got.Records {
				seen[r.PoolNo] = r.NumberCount
			}
		}
		for _, p := range all {
			if n, ok := seen[p.No]; !ok || n != len(p.Numbers) {
				t.Errorf("pool %s: seen %v with %d numbers, want %d", p.No, ok, n, len(p.Numbers))
			}
		}
	})

	t.Run("filter", func(t *testing.T) {
		want := all[13]
		status, body := get(t, base+"/pools?poolNo="+want.No)
		var got pools.Response
		if status != 200 || json.Unmarshal(body, &got) != nil || got.Total != 1 || got.Records[0].Name != want.Name || got.Records[0].ServiceType != want.ServiceType {
			t.Fatalf("status %d body %s", status, body)
		}
		status, body = get(t, base+"/pools?serviceType=200&limit=100")
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("status %d body %s", status, body)
		}
		privacy := 0
		for _, p := range all {
			if p.ServiceType == vms.ServicePrivacy {
				privacy++
			}
		}
		if got.Total != privacy || len(got.Records) != privacy {
			t.Errorf("privacy pools %d of %d, want %d", len(got.Records), got.Total, privacy)
		}
	})

	t.Run("numbers", func(t *testing.T) {
		p := all[0]
		status, body := get(t, base+"/pools/"+p.No+"/numbers?limit=5")
		var got pools.NumbersResponse
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("status %d body %s", status, body)
		}
		if got.PoolNo != p.No || got.Total != len(p.Numbers) || len(got.Records) != 5 || got.Records[0].PoolNo != p.No {
			t.Errorf("numbers %+v", got)
		}
		status, body = get(t, base+"/pools/"+p.No+"/numbers?numbers="+p.Numbers[1].Number+","+p.Numbers[2].Number)
		if status != 200 || json.Unmarshal(body, &got) != nil || got.Total != 2 {
			t.Errorf("numbers filter: %d %s", status, body)
		}
		if status, body := get(t, base+"/pools/"+p.No+"/numbers?numbers=12ab"); status != 400 {
			t.Errorf("bad number: %d %s", status, body)
		}
	})
}

func TestEndToEndThrottled(t *testing.T) {
	emu := emulatortest.NewServer(t, emulator.WithFault("NumberPoolList", fault.Fault{QPS: 0.001, Burst: 1}))
	base := functiontest.Serve(t, pools.New(volcengine.Name, volcClient(t, emu)).Function(), io.Discard)
	if status, body := get(t, base+"/pools"); status != 200 {
		t.Fatalf("first call: %d %s", status, body)
	}
	status, body := get(t, base+"/pools")
	var eb httpjson.ErrorBody
	if status != 429 || json.Unmarshal(body, &eb) != nil || eb.Error.Code != "Throttled" {
		t.Fatalf("over the QPS: %d %s", status, body)
	}
}

func TestEndToEndNATS(t *testing.T) {
	emu := emulatortest.NewServer(t)
	client := volcClient(t, emu)
	h := pools.New(volcengine.Name, client, pools.WithNumbers(client))
	base := functiontest.Serve(t, h.Function(), io.Discard)
	nc := natsrpctest.Serve(t, h.Function().Services)

	var viaNATS json.RawMessage
	if err := natsrpctest.Request(t, nc, pools.Subject, provider.PoolQuery{ServiceType: 100, Offset: 2, Limit: 3}, &viaNATS); err != nil {
		t.Fatal(err)
	}
	status, viaHTTP := get(t, base+"/pools?serviceType=100&offset=2&limit=3")
	if status != 200 || !bytes.Equal(viaHTTP, viaNATS) {
		t.Errorf("NATS and HTTP differ:\nnats %s\nhttp %s", viaNATS, viaHTTP)
	}
	// An empty request is the default page.
	var page pools.Response
	if err := natsrpc.Request(context.Background(), nc, pools.Subject, json.RawMessage(`{}`), &page); err != nil || page.Limit != 10 {
		t.Errorf("default page over NATS: %+v %v", page, err)
	}
	p := vms.DefaultPools()[0]
	var nums pools.NumbersResponse
	if err := natsrpc.Request(context.Background(), nc, pools.NumbersSubject, provider.NumberQuery{PoolNo: p.No}, &nums); err != nil || nums.Total != len(p.Numbers) {
		t.Errorf("numbers over NATS: %+v %v", nums, err)
	}
	err := natsrpc.Request(context.Background(), nc, pools.Subject, provider.PoolQuery{Limit: 500}, nil)
	var re *natsrpc.RemoteError
	if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(re.Body.Error.Message, "limit") {
		t.Errorf("invalid query over NATS: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
