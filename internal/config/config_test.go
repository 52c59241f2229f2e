package config_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats/embednatstest"
	"github.com/xnum-dev/xnum/internal/testutil"
)

func TestNATS(t *testing.T) {
	n, err := config.LoadNATS(testutil.Env{}.Lookup)
	if err != nil || n.Enabled() || n.Options() != nil || n.Replicas != 1 {
		t.Fatalf("no NATS: %+v %v", n, err)
	}
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err = config.LoadNATS(testutil.Env{config.NATSURL: "nats://10.0.0.5:4222, tls://10.0.0.6:4222", config.NATSCreds: creds, config.NATSReplicas: "3"}.Lookup)
	if err != nil || !n.Enabled() || len(n.Options()) != 1 || n.Replicas != 3 {
		t.Fatalf("with creds and replicas: %+v %v", n, err)
	}
	for _, tc := range []struct {
		env testutil.Env
		bad string
	}{
		{testutil.Env{config.NATSURL: "http://h:4222"}, config.NATSURL},
		{testutil.Env{config.NATSURL: "nats://"}, config.NATSURL},
		{testutil.Env{config.NATSCreds: creds}, config.NATSCreds},
		{testutil.Env{config.NATSURL: "nats://h:4222", config.NATSCreds: filepath.Join(t.TempDir(), "missing.creds")}, config.NATSCreds},
		{testutil.Env{config.NATSURL: "nats://h:4222", config.NATSReplicas: "2"}, config.NATSReplicas},
		{testutil.Env{config.NATSURL: "nats://h:4222", config.NATSReplicas: "0"}, config.NATSReplicas},
		{testutil.Env{config.NATSURL: "nats://h:4222", config.NATSReplicas: "three"}, config.NATSReplicas},
	} {
		_, err := config.LoadNATS(tc.env.Lookup)
		testutil.WantEnvError(t, err, tc.bad, tc.env)
	}
}

func TestLevel(t *testing.T) {
	if l, err := config.LoadLevel(testutil.Env{}.Lookup); err != nil || l != slog.LevelInfo {
		t.Errorf("default level: %v %v", l, err)
	}
	if l, err := config.LoadLevel(testutil.Env{config.LogLevel: "debug"}.Lookup); err != nil || l != slog.LevelDebug {
		t.Errorf("level: %v %v", l, err)
	}
	_, err := config.LoadLevel(testutil.Env{config.LogLevel: "chatty"}.Lookup)
	testutil.WantEnvError(t, err, config.LogLevel, nil)
}

func TestLambdaLogLevel(t *testing.T) {
	for _, tc := range []struct {
		env  testutil.Env
		want slog.Level
	}{
		{testutil.Env{config.LambdaLogLevel: "TRACE"}, slog.LevelDebug},
		{testutil.Env{config.LambdaLogLevel: "DEBUG", config.LogLevel: "error"}, slog.LevelDebug}, // Lambda's wins
		{testutil.Env{config.LambdaLogLevel: "WARN", config.LogLevel: "debug"}, slog.LevelWarn},
		{testutil.Env{config.LambdaLogLevel: "ERROR"}, slog.LevelError},
		{testutil.Env{config.LambdaLogLevel: "FATAL"}, slog.LevelError},
		{testutil.Env{config.LambdaLogLevel: "", config.LogLevel: "warn"}, slog.LevelWarn},
	} {
		if l, err := config.LoadLevel(tc.env.Lookup); err != nil || l != tc.want {
			t.Errorf("%v: level %v, %v; want %v", tc.env, l, err, tc.want)
		}
	}
	_, err := config.LoadLevel(testutil.Env{config.LambdaLogLevel: "LOUD"}.Lookup)
	testutil.WantEnvError(t, err, config.LambdaLogLevel, nil)
}

func TestMetricsAddr(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:9090", ":9090", "[::1]:0", "localhost:9100"} {
		if got, err := config.LoadMetricsAddr(testutil.Env{config.MetricsAddr: ok}.Lookup); err != nil || got != ok {
			t.Errorf("%q: %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"9090", "host:port", "127.0.0.1:70000", "http://x:1", "a b:1"} {
		_, err := config.LoadMetricsAddr(testutil.Env{config.MetricsAddr: bad}.Lookup)
		testutil.WantEnvError(t, err, config.MetricsAddr, nil)
	}
}

func TestCheckSDKDebug(t *testing.T) {
	for _, tc := range []struct {
		env testutil.Env
		bad string // the variable the error names; "" = starts
	}{
		{nil, ""},
		{testutil.Env{config.Debug: "http,tea"}, ""},
		{testutil.Env{config.Debug: "sdk"}, config.Debug},
		{testutil.Env{config.Debug: "tea,sdk"}, config.Debug},
		{testutil.Env{config.Debug: "tea, sdk"}, config.Debug},
		{testutil.Env{config.Debug: "sdk", config.AllowSDKDebug: "1"}, ""},
		{testutil.Env{config.Debug: "sdk", config.AllowSDKDebug: "0"}, config.Debug},
		{testutil.Env{config.Debug: "sdk", config.AllowSDKDebug: "yes please"}, config.AllowSDKDebug},
	} {
		err := config.CheckSDKDebug(tc.env.Lookup)
		if tc.bad == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		testutil.WantEnvError(t, err, tc.bad, nil)
		if tc.bad == config.Debug && (!strings.Contains(err.Error(), "SecurityToken") || !strings.Contains(err.Error(), config.AllowSDKDebug)) {
			t.Errorf("the refusal does not say why or how: %v", err)
		}
	}
}

// fcEnv is what FC sets in every function instance.
var fcEnv = testutil.Env{}.With(testutil.OnFC...)

func TestOnFC(t *testing.T) {
	if !config.OnFC(fcEnv.Lookup) {
		t.Error("FC's variables present: not on FC")
	}
	for _, name := range []string{config.FCFunctionName, config.FCRegion, config.FCAccountID} {
		if config.OnFC(fcEnv.With(name, "").Lookup) {
			t.Errorf("without %s: on FC", name)
		}
	}
	if config.OnFC(testutil.Env{}.Lookup) {
		t.Error("an empty environment is on FC")
	}
}

func TestLoadHTTPAddr(t *testing.T) {
	for _, tc := range []struct {
		env  testutil.Env
		want string
		bad  string
	}{
		{nil, "127.0.0.1:9000", ""},
		{testutil.Env{config.Port: "8080"}, "127.0.0.1:8080", ""},
		{testutil.Env{config.FCServerPort: "9001", config.Port: "8080"}, "127.0.0.1:9001", ""},
		{testutil.Env{config.HTTPAddr: "0.0.0.0:8081", config.Port: "8080"}, "0.0.0.0:8081", ""},
		{testutil.Env{config.HTTPAddr: "[::1]:8081"}, "[::1]:8081", ""},
		{fcEnv, "0.0.0.0:9000", ""},
		{fcEnv.With(config.FCServerPort, "9001", config.FCCustomListenPort, "9002"), "0.0.0.0:9002", ""},
		{fcEnv.With(config.HTTPAddr, "127.0.0.1:9000"), "127.0.0.1:9000", ""},
		{testutil.Env{config.HTTPAddr: "9000"}, "", config.HTTPAddr},
		{testutil.Env{config.HTTPAddr: "host:http"}, "", config.HTTPAddr},
		{testutil.Env{config.Port: "eighty"}, "", config.Port},
	} {
		got, err := config.LoadHTTPAddr(tc.env.Lookup)
		if tc.bad != "" {
			testutil.WantEnvError(t, err, tc.bad, nil)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LoadHTTPAddr(%v) = %q, %v, want %q", tc.env, got, err, tc.want)
		}
	}
}

// The options LoadNATS makes connect over TLS (a private CA) with a .creds
// file; without either the server refuses.
func TestNATSOverTLSWithCredentials(t *testing.T) {
	srv := embednatstest.Secure(t, embednatstest.User{Name: "xnum-test", Pub: []string{"xnum.test"}, Sub: []string{"_INBOX.>"}})
	files := srv
	plain := "nats://" + strings.TrimPrefix(srv.ClientURL(), "tls://")
	for _, tc := range []struct {
		name string
		env  testutil.Env
		ok   bool
	}{
		{"tls and creds", testutil.Env{config.NATSURL: srv.ClientURL(), config.NATSCA: files.CA, config.NATSCreds: files.Creds["xnum-test"]}, true},
		{"a CA makes a nats:// URL TLS", testutil.Env{config.NATSURL: plain, config.NATSCA: files.CA, config.NATSCreds: files.Creds["xnum-test"]}, true},
		{"no creds", testutil.Env{config.NATSURL: srv.ClientURL(), config.NATSCA: files.CA}, false},
		{"no CA", testutil.Env{config.NATSURL: srv.ClientURL(), config.NATSCreds: files.Creds["xnum-test"]}, false},
		{"plaintext", testutil.Env{config.NATSURL: plain, config.NATSCreds: files.Creds["xnum-test"]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := config.LoadNATS(tc.env.Lookup)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(n.URL, append(n.Options(), nats.Timeout(5*time.Second))...)
			if !tc.ok {
				if err == nil {
					nc.Close()
					t.Fatal("connected")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.TLSConnectionState(); err != nil || !n.Secured() {
				t.Errorf("not TLS: %v (Secured() %v)", err, n.Secured())
			}
			if err := nc.Publish("xnum.test", []byte("x")); err != nil || nc.Flush() != nil {
				t.Errorf("publish: %v", err)
			}
		})
	}
}

func TestNATSFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	seed := file("user.nk", "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n")
	pem := file("ca.pem", "-----BEGIN CERTIFICATE-----\n")
	empty := file("empty.pem", "")
	url := "tls://10.0.0.5:4222"
	n, err := config.LoadNATS(testutil.Env{config.NATSURL: url, config.NATSNKey: seed, config.NATSCA: pem, config.NATSCert: pem, config.NATSKey: pem}.Lookup)
	if err != nil || n.NKey != seed || n.CA != pem || len(n.Options()) != 3 || !n.Secured() {
		t.Fatalf("%+v %v", n, err)
	}
	for _, u := range []string{"nats://h:4222", "tls://h:4222", "nats://u:p@h:4222", "tls://u:p@h:4222,nats://u:p@h2:4222"} {
		if n, _ := config.LoadNATS(testutil.Env{config.NATSURL: u}.Lookup); n.Secured() {
			t.Errorf("%s without a CA or credentials is secured", u)
		}
	}
	if n, _ := config.LoadNATS(testutil.Env{config.NATSURL: "tls://u:p@h:4222"}.Lookup); !n.Secured() {
		t.Error("a password over TLS is not secured")
	}
	for _, tc := range []struct {
		env testutil.Env
		bad string
	}{
		{testutil.Env{config.NATSURL: url, config.NATSCreds: pem, config.NATSNKey: seed}, config.NATSNKey},
		{testutil.Env{config.NATSURL: url, config.NATSCert: pem}, config.NATSKey},
		{testutil.Env{config.NATSURL: url, config.NATSNKey: pem}, config.NATSNKey},
		{testutil.Env{config.NATSURL: url, config.NATSCA: empty}, config.NATSCA},
		{testutil.Env{config.NATSURL: url, config.NATSCA: filepath.Join(dir, "missing.pem")}, config.NATSCA},
		{testutil.Env{config.NATSCA: pem}, config.NATSCA},
	} {
		_, err := config.LoadNATS(tc.env.Lookup)
		testutil.WantEnvError(t, err, tc.bad, nil)
		if err != nil && strings.Contains(err.Error(), "SUACSSL3") {
			t.Errorf("the error shows the seed: %v", err)
		}
	}
}
