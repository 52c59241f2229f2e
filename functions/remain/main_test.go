package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats/embednatstest"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
)

var bin = functiontest.Binary{Name: "remain", Wire: wire}

// The same binary on FC and off it: the routes answer in both; an event
// invocation is FC's to send, so off FC /invoke is only an unknown route.
func TestFC(t *testing.T) {
	emu := emulatortest.NewServer(t)
	t.Run("on FC", func(t *testing.T) { testRoutesAndInvoke(t, testutil.Env(emu.AliyunEnv()).With(testutil.OnFC...), true) })
	t.Run("off FC", func(t *testing.T) { testRoutesAndInvoke(t, emu.AliyunEnv(), false) })
}

func testRoutesAndInvoke(t *testing.T, env testutil.Env, onFC bool) {
	out := &testutil.SyncBuffer{}
	base := bin.Start(t, env, out)

	resp, err := http.Get(base + "/remain?" + url.Values{"city": {"杭州"}, "specId": {"1"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var got remain.Response
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || got.Provider != "aliyun" || got.Amount == 0 {
		t.Fatalf("GET /remain: %d %+v %v", resp.StatusCode, got, err)
	}

	// remain takes no events: on FC an event invocation is a function error,
	// refused unread; off FC /invoke is no route.
	req, _ := http.NewRequest("POST", base+"/invoke", strings.NewReader(`{"a":1}`))
	req.Header.Set("x-fc-request-id", "fc-ev-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb httpjson.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	wantStatus, wantCode := "", "NotFound"
	if onFC {
		wantStatus, wantCode = "404", "InvalidParameter"
	}
	if resp.StatusCode != 404 || resp.Header.Get("x-fc-status") != wantStatus || eb.Error.Code != wantCode {
		t.Errorf("POST /invoke: %d %q %+v, want 404 %q %s", resp.StatusCode, resp.Header.Get("x-fc-status"), eb, wantStatus, wantCode)
	}
	if marked := strings.Contains(out.String(), "FC Invoke Start RequestId: fc-ev-1"); marked != onFC || !strings.Contains(out.String(), `"function":"remain"`) {
		t.Errorf("FC markers (want %v) or JSON logs:\n%s", onFC, out.String())
	}
}

func TestLambda(t *testing.T) {
	api := bin.StartLambda(t, emulatortest.NewServer(t).AliyunEnv())

	event := `{"version":"2.0","routeKey":"GET /remain","rawPath":"/remain","rawQueryString":"city=%E5%85%A8%E5%9B%BD%E5%88%97%E8%A1%A8&specId=2","headers":{"accept":"*/*"},"requestContext":{"http":{"method":"GET","path":"/remain","sourceIp":"1.2.3.4"},"requestId":"apigw-1"},"isBase64Encoded":false}`
	res := api.Invoke(t, []byte(event))
	var resp struct {
		StatusCode int
		Body       string
	}
	if res.Kind != "response" || json.Unmarshal(res.Body, &resp) != nil || resp.StatusCode != 200 {
		t.Fatalf("Lambda answer: %s %s", res.Kind, res.Body)
	}
	var got remain.Response
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || got.City != "全国列表" || len(got.Cities) == 0 {
		t.Errorf("body %s", resp.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := testutil.Env{aliyun.EnvAccessKeyID: emulator.DefaultAccessKeyID, aliyun.EnvAccessKeySecret: emulator.DefaultAccessKeySecret}
	for _, tc := range []struct {
		name string
		env  testutil.Env
		bad  string
	}{
		{"no secret", ok.With(aliyun.EnvAccessKeySecret, ""), aliyun.EnvAccessKeySecret},
		{"bad endpoint", ok.With(aliyun.EnvEndpoint, "ftp://x"), aliyun.EnvEndpoint},
		{"bad log level", ok.With(config.LogLevel, "loud"), config.LogLevel},
		{"bad NATS URL", ok.With(config.NATSURL, "localhost"), config.NATSURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bin.Run(context.Background(), tc.env, io.Discard)
			var ee *envvar.Error
			if !errors.As(err, &ee) || ee.Var != tc.bad || strings.Contains(err.Error(), emulator.DefaultAccessKeySecret) {
				t.Fatalf("run = %v, want an error naming %s", err, tc.bad)
			}
		})
	}
}

// On FC's go1 runtime (FC_RUNTIME_API) the same binary answers the runtime
// API's invocations: an HTTP-trigger event through GET /remain with the
// role's credentials of the invocation, an event as a function error (remain
// takes none), the initializer, with FC's markers on stdout.
func TestFCGo1(t *testing.T) {
	emu := emulatortest.NewServer(t, emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	api := fcgo1test.NewRuntimeAPI(t)
	out := &testutil.SyncBuffer{}
	// The credentials FC put in the environment at start have expired.
	env := testutil.Env(emu.AliyunEnv()).With(fcgo1.RuntimeAPIEnv, api.Addr(), aliyun.EnvAccessKeyID, "STS.old", aliyun.EnvAccessKeySecret, "old-secret")
	testutil.Run(t, func(ctx context.Context) error { return bin.Run(ctx, env, out) })
	role := map[string]string{"x-fc-access-key-id": "STS.role", "x-fc-access-key-secret": "role-secret", "x-fc-security-token": "role-token"}

	if res := api.Invoke(t, fcgo1test.Invocation{Type: fcgo1.TypeInitializer}); res.Kind != "response" {
		t.Fatalf("initializer: %s %s", res.Kind, res.Body)
	}
	resp := api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-remain-1", Header: role,
		Payload: fcgo1test.HTTPEvent("GET", "/remain?"+url.Values{"city": {"杭州"}, "specId": {"1"}}.Encode(), nil, "")}).HTTP(t)
	var got remain.Response
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &got) != nil || got.Provider != "aliyun" || got.Amount == 0 {
		t.Fatalf("GET /remain on go1: %+v", resp)
	}
	// Without the role's credentials the stale keys are refused: 502, in
	// the shared error shape.
	resp = api.Invoke(t, fcgo1test.Invocation{Payload: fcgo1test.HTTPEvent("GET", "/remain?city=%E6%9D%AD%E5%B7%9E&specId=1", nil, "")}).HTTP(t)
	if resp.StatusCode != 502 || !strings.Contains(resp.Body, `"code":"Unauthorized"`) {
		t.Errorf("GET /remain without the role's credentials: %+v", resp)
	}
	if doc := api.Invoke(t, fcgo1test.Invocation{RequestID: "go1-ev-1", Payload: []byte(`{"a":1}`)}).Error(t); doc.Type != "InvalidParameter" {
		t.Errorf("an event: %+v", doc)
	}
	for _, line := range []string{"FC Invoke Start RequestId: go1-remain-1\n", "FC Invoke End RequestId: go1-ev-1, Error: Unhandled function error\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("stdout lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "role-secret") || strings.Contains(out.String(), "role-token") {
		t.Errorf("a secret reached stdout:\n%s", out.String())
	}
}

// With the NATS account of the README's Security section, read from it,
// remain serves xnum.remain over TLS as the services user, and the
// producer's request is answered, with no permission denied on the way.
func TestNATSAccountOfTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	srv := embednatstest.Secure(t, embednatstest.UsersFromNSC(t, string(readme))...)
	emu := emulatortest.NewServer(t)
	bin.Start(t, testutil.Env(emu.AliyunEnv()).With(config.NATSURL, srv.ClientURL(), config.NATSCA, srv.CA, config.NATSCreds, srv.Creds["xnum-services"]), io.Discard)

	n, err := config.LoadNATS(testutil.Env{config.NATSURL: srv.ClientURL(), config.NATSCA: srv.CA, config.NATSCreds: srv.Creds["xnum-producer"]}.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.URL, n.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var got remain.Response
	for deadline := time.Now().Add(10 * time.Second); got.Amount == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m, err := nc.Request("xnum.remain", []byte(`{"city":"杭州","specId":1}`), 2*time.Second); err == nil {
			_ = json.Unmarshal(m.Data, &got)
		}
	}
	if got.Amount == 0 || got.Provider != "aliyun" {
		t.Fatalf("xnum.remain over TLS: %+v", got)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("a permission was missing:\n%s", strings.Join(v, "\n"))
	}
}
