package main

import (
	"encoding/json"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats/embednatstest"
	"github.com/xnum-dev/xnum/internal/function/functiontest"
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
	var got remain.Response
	status := functiontest.GetJSON(t, base+"/remain?"+url.Values{"city": {"杭州"}, "specId": {"1"}}.Encode(), &got)
	if status != 200 || got.Provider != "aliyun" || got.Amount == 0 {
		t.Fatalf("GET /remain: %d %+v", status, got)
	}
	bin.TakesNoEvents(t, base, out, onFC)
}

func TestLambda(t *testing.T) {
	api := bin.StartLambda(t, emulatortest.NewServer(t).AliyunEnv())
	var got remain.Response
	status := functiontest.InvokeGET(t, api, "/remain", url.Values{"city": {"全国列表"}, "specId": {"2"}}.Encode(), &got)
	if status != 200 || got.City != "全国列表" || len(got.Cities) == 0 {
		t.Errorf("GET /remain on Lambda: %d %+v", status, got)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := testutil.Env{aliyun.EnvAccessKeyID: emulator.DefaultAccessKeyID, aliyun.EnvAccessKeySecret: emulator.DefaultAccessKeySecret}
	for _, tc := range []struct{ name, variable, value string }{
		{"no secret", aliyun.EnvAccessKeySecret, ""},
		{"bad endpoint", aliyun.EnvEndpoint, "ftp://x"},
		{"bad log level", config.LogLevel, "loud"},
		{"bad NATS URL", config.NATSURL, "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) { bin.Refuses(t, ok.With(tc.variable, tc.value), tc.variable) })
	}
}

// On FC's go1 runtime (FC_RUNTIME_API) the same binary answers the runtime
// API's invocations: an HTTP-trigger event through GET /remain with the
// role's credentials of the invocation, an event as a function error (remain
// takes none), the initializer, with FC's markers on stdout.
func TestFCGo1(t *testing.T) {
	emu := emulatortest.NewServer(t, emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	out := &testutil.SyncBuffer{}
	// The credentials FC put in the environment at start have expired.
	api := bin.StartGo1(t, testutil.Env(emu.AliyunEnv()).With(aliyun.EnvAccessKeyID, "STS.old", aliyun.EnvAccessKeySecret, "old-secret"), out)
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
