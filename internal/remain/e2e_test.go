package remain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc/natsrpctest"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// stock counts the emulator's default numbers of a city (all cities for
// "") and spec whose number starts with prefix.
func stock(city string, spec int, prefix string) int64 {
	var n int64
	for _, x := range dypls.DefaultNumbers() {
		if (city == "" || x.City == city) && x.SpecID == spec && strings.HasPrefix(x.SecretNo, prefix) {
			n++
		}
	}
	return n
}

func fetch(t *testing.T, base, city, spec, prefix string, headers map[string]string) (int, []byte) {
	t.Helper()
	v := url.Values{"city": {city}, "specId": {spec}}
	if prefix != "" {
		v.Set("prefix", prefix)
	}
	var pairs []string
	for k, val := range headers {
		pairs = append(pairs, k, val)
	}
	resp, b := testutil.Do(t, "GET", base+"/remain?"+v.Encode(), "", pairs...)
	return resp.StatusCode, b
}

// serveOnce serves the function with a client of cfg that sends each query
// once, so that a provider's error is answered as it came.
func serveOnce(t *testing.T, cfg aliyun.Config) string {
	t.Helper()
	cfg.QueryAttempts = 1
	client, err := aliyun.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return functiontest.Serve(t, remain.New(aliyun.Name, client).Function(), io.Discard)
}

func TestEndToEndHTTP(t *testing.T) {
	emu := emulatortest.NewServer(t)
	base := serveOnce(t, emu.AliyunConfig())

	first := dypls.DefaultNumbers()[0]
	for _, tc := range []struct {
		name, city, spec, prefix string
		want                     int64
	}{
		{"one city", "杭州", "1", "", stock("杭州", 1, "")},
		{"carrier", "北京", "2", "", stock("北京", 2, "")},
		{"prefix", first.City, "1", first.SecretNo[:5], stock(first.City, 1, first.SecretNo[:5])},
		{"no stock", "拉萨", "2", "", 0},
		{"nationwide", "全国", "2", "", stock("", 2, "")},
		{"95 numbers", "全国通用", "3", "", stock("全国通用", 3, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := fetch(t, base, tc.city, tc.spec, tc.prefix, nil)
			var got remain.Response
			if status != 200 || json.Unmarshal(body, &got) != nil {
				t.Fatalf("status %d body %s", status, body)
			}
			if got.Amount != tc.want || got.City != tc.city || got.Prefix != tc.prefix || got.Provider != "aliyun" || got.Cities != nil {
				t.Errorf("got %+v, want amount %d", got, tc.want)
			}
		})
	}

	t.Run("nationwide list", func(t *testing.T) {
		status, body := fetch(t, base, "全国列表", "1", "", nil)
		var got remain.Response
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("status %d body %s", status, body)
		}
		var sum int64
		for _, c := range got.Cities {
			if c.Amount != stock(c.City, 1, "") || c.Amount == 0 {
				t.Errorf("city %s: %d, want %d (only cities with stock)", c.City, c.Amount, stock(c.City, 1, ""))
			}
			sum += c.Amount
		}
		if got.Amount != sum || sum != stock("", 1, "") || len(got.Cities) == 0 {
			t.Errorf("amount %d, cities sum %d, stock %d", got.Amount, sum, stock("", 1, ""))
		}
	})
}

func TestEndToEndProviderErrors(t *testing.T) {
	emu := emulatortest.NewServer(t, emulator.WithFault("QuerySecretNoRemain", fault.Fault{ErrorCode: "Throttling.User"}))
	base := serveOnce(t, emu.AliyunConfig())
	status, body := fetch(t, base, "杭州", "1", "", nil)
	var eb httpjson.ErrorBody
	if status != 429 || json.Unmarshal(body, &eb) != nil || eb.Error.Code != "Throttled" || eb.Error.RequestID == "" {
		t.Fatalf("status %d body %s", status, body)
	}

	// A provider that cannot be reached is 503, its address not in the body.
	down := emu.AliyunConfig()
	down.Endpoint = "http://127.0.0.1:1"
	base = serveOnce(t, down)
	status, body = fetch(t, base, "杭州", "1", "", nil)
	if status != 503 || strings.Contains(string(body), "127.0.0.1") {
		t.Fatalf("status %d body %s", status, body)
	}
}

// TestEndToEndSTS runs remain as FC runs a function with a role: no
// static keys, the STS credentials in each request's headers. The
// emulator accepts only those credentials, and no log line or body shows
// the secret or the token.
func TestEndToEndSTS(t *testing.T) {
	const (
		id     = "STS.NTestKeyId"
		secret = "StsSecretForRemain"
		token  = "CAISStsTokenForRemain"
	)
	emu := emulatortest.NewServer(t, emulator.WithSTSToken(id, secret, token))
	logs := &testutil.SyncBuffer{}
	client, err := aliyun.New(aliyun.Config{Endpoint: emu.URL, QueryAttempts: 1, Logger: logging.New(logs, logging.Options{Level: slog.LevelDebug})})
	if err != nil {
		t.Fatal(err)
	}
	base := functiontest.Serve(t, remain.New(aliyun.Name, client).Function(), logs)

	status, body := fetch(t, base, "杭州", "1", "", nil)
	if status != 502 {
		t.Errorf("without credentials: status %d body %s, want 502", status, body)
	}
	headers := map[string]string{
		"x-fc-request-id":        "fc-sts-1",
		"x-fc-access-key-id":     id,
		"x-fc-access-key-secret": secret,
		"x-fc-security-token":    token,
	}
	status, body = fetch(t, base, "杭州", "1", "", headers)
	var got remain.Response
	if status != 200 || json.Unmarshal(body, &got) != nil || got.Amount != stock("杭州", 1, "") {
		t.Fatalf("with STS headers: status %d body %s", status, body)
	}
	headers["x-fc-security-token"] = "CAISWrongToken"
	status, body = fetch(t, base, "杭州", "1", "", headers)
	if status != 502 || !strings.Contains(string(body), `"Unauthorized"`) {
		t.Errorf("with a wrong token: status %d body %s", status, body)
	}
	for _, s := range []string{secret, token, "CAISWrongToken"} {
		if strings.Contains(logs.String(), s) || strings.Contains(string(body), s) {
			t.Errorf("%q leaked:\n%s\n%s", s, logs.String(), body)
		}
	}
	if !strings.Contains(logs.String(), `"requestId":"fc-sts-1"`) {
		t.Errorf("logs lack the FC request id")
	}
}

// TestEndToEndNATS answers xnum.remain on embedded NATS with the same JSON
// as GET /remain.
func TestEndToEndNATS(t *testing.T) {
	emu := emulatortest.NewServer(t)
	h := remain.New(aliyun.Name, emu.Aliyun(t))
	base := functiontest.Serve(t, h.Function(), io.Discard)
	nc := natsrpctest.Serve(t, h.Function().Services)

	var viaNATS json.RawMessage
	if err := natsrpctest.Request(t, nc, remain.Subject, provider.RemainQuery{City: "全国列表", SpecID: 2}, &viaNATS); err != nil {
		t.Fatal(err)
	}
	status, viaHTTP := fetch(t, base, "全国列表", "2", "", nil)
	if status != 200 || !bytes.Equal(bytes.TrimSpace(viaHTTP), viaNATS) {
		t.Errorf("NATS and HTTP differ:\nnats %s\nhttp %s", viaNATS, viaHTTP)
	}

	err := natsrpc.Request(context.Background(), nc, remain.Subject, map[string]any{"city": "杭州", "specId": 7}, nil)
	var re *natsrpc.RemoteError
	if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(re.Body.Error.Message, "specId") {
		t.Errorf("invalid query over NATS: %v", err)
	}
}
