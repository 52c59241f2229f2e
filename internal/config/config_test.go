package config_test

import (
	"errors"
	"fmt"
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

const secretValue = "Sup3rSecretValue"

func env(m map[string]string) config.Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// checkErr asserts err is a *config.Error naming name, without the secret.
func checkErr(t *testing.T, err error, name string) {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != name || !strings.Contains(err.Error(), name) {
		t.Fatalf("error = %v, want one naming %s", err, name)
	}
	if strings.Contains(err.Error(), secretValue) {
		t.Fatalf("error shows a secret: %v", err)
	}
}

func TestAliyun(t *testing.T) {
	ok := map[string]string{config.AliyunAccessKeyID: "LTAI5tExample", config.AliyunAccessKeySecret: secretValue}
	c, err := config.LoadAliyun(env(ok))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "LTAI5tExample" || c.AccessKeySecret != secretValue || c.Region != "cn-hangzhou" || c.Endpoint != "" || c.QueryAttempts != 0 {
		t.Errorf("defaults: %v", c)
	}
	c, err = config.LoadAliyun(env(with(ok,
		config.AliyunSecurityToken, "CAIS"+secretValue,
		config.AliyunRegion, "cn-shanghai",
		config.AliyunEndpoint, "http://127.0.0.1:9100/",
		config.AliyunConnectTimeout, "2s",
		config.AliyunReadTimeout, "1m",
		config.AliyunQueryAttempts, "5",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.SecurityToken != "CAIS"+secretValue || c.Region != "cn-shanghai" || c.Endpoint != "http://127.0.0.1:9100" ||
		c.ConnectTimeout != 2*time.Second || c.ReadTimeout != time.Minute || c.QueryAttempts != 5 {
		t.Errorf("overrides: %v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, secretValue) {
		t.Errorf("a printed config shows the secret: %s", s)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		bad  string
	}{
		{"no key id", map[string]string{config.AliyunAccessKeySecret: secretValue}, config.AliyunAccessKeyID},
		{"no secret", map[string]string{config.AliyunAccessKeyID: "LTAI"}, config.AliyunAccessKeySecret},
		{"blank secret", with(ok, config.AliyunAccessKeySecret, "   "), config.AliyunAccessKeySecret},
		{"newline in secret", with(ok, config.AliyunAccessKeySecret, secretValue+"\nx"), config.AliyunAccessKeySecret},
		{"space in key id", with(ok, config.AliyunAccessKeyID, "LTAI 5t"), config.AliyunAccessKeyID},
		{"token with space", with(ok, config.AliyunSecurityToken, "CAIS "+secretValue), config.AliyunSecurityToken},
		{"region", with(ok, config.AliyunRegion, "cn hangzhou"), config.AliyunRegion},
		{"endpoint scheme", with(ok, config.AliyunEndpoint, "ftp://x"), config.AliyunEndpoint},
		{"endpoint no host", with(ok, config.AliyunEndpoint, "http://"), config.AliyunEndpoint},
		{"endpoint credentials", with(ok, config.AliyunEndpoint, "http://u:"+secretValue+"@h"), config.AliyunEndpoint},
		{"endpoint path", with(ok, config.AliyunEndpoint, "http://h/api"), config.AliyunEndpoint},
		{"connect timeout", with(ok, config.AliyunConnectTimeout, "5"), config.AliyunConnectTimeout},
		{"read timeout", with(ok, config.AliyunReadTimeout, "1h"), config.AliyunReadTimeout},
		{"attempts", with(ok, config.AliyunQueryAttempts, "11"), config.AliyunQueryAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.LoadAliyun(env(tc.env))
			checkErr(t, err, tc.bad)
		})
	}
}

func TestVolcengine(t *testing.T) {
	ok := map[string]string{config.VolcAccessKey: "AKLTExample", config.VolcSecretKey: secretValue}
	c, err := config.LoadVolcengine(env(ok))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "cn-beijing" || c.MaxRetries != 0 || c.Timeout != 0 || c.SecretAccessKey != secretValue {
		t.Errorf("defaults: %v", c)
	}
	c, err = config.LoadVolcengine(env(with(ok, config.VolcEndpoint, "https://vms.example.com", config.VolcTimeout, "3s", config.VolcMaxRetries, "0", config.VolcSessionToken, "STS"+secretValue)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://vms.example.com" || c.Timeout != 3*time.Second || c.MaxRetries != -1 || c.SessionToken != "STS"+secretValue {
		t.Errorf("overrides: %v", c)
	}
	if c, _ = config.LoadVolcengine(env(with(ok, config.VolcMaxRetries, "4"))); c.MaxRetries != 4 {
		t.Errorf("retries: %d", c.MaxRetries)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		bad  string
	}{
		{"no access key", map[string]string{config.VolcSecretKey: secretValue}, config.VolcAccessKey},
		{"no secret key", map[string]string{config.VolcAccessKey: "AKLT"}, config.VolcSecretKey},
		{"region", with(ok, config.VolcRegion, "北京"), config.VolcRegion},
		{"endpoint", with(ok, config.VolcEndpoint, "cloud-vms.volcengineapi.com"), config.VolcEndpoint},
		{"timeout", with(ok, config.VolcTimeout, "-1s"), config.VolcTimeout},
		{"retries", with(ok, config.VolcMaxRetries, "many"), config.VolcMaxRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.LoadVolcengine(env(tc.env))
			checkErr(t, err, tc.bad)
		})
	}
}

func TestNATS(t *testing.T) {
	n, err := config.LoadNATS(env(nil))
	if err != nil || n.Enabled() || n.Options() != nil || n.Replicas != 1 {
		t.Fatalf("no NATS: %+v %v", n, err)
	}
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err = config.LoadNATS(env(map[string]string{config.NATSURL: "nats://10.0.0.5:4222, tls://10.0.0.6:4222", config.NATSCreds: creds, config.NATSReplicas: "3"}))
	if err != nil || !n.Enabled() || len(n.Options()) != 1 || n.Replicas != 3 {
		t.Fatalf("with creds and replicas: %+v %v", n, err)
	}
	for _, tc := range []struct {
		env map[string]string
		bad string
	}{
		{map[string]string{config.NATSURL: "http://h:4222"}, config.NATSURL},
		{map[string]string{config.NATSURL: "nats://"}, config.NATSURL},
		{map[string]string{config.NATSCreds: creds}, config.NATSCreds},
		{map[string]string{config.NATSURL: "nats://h:4222", config.NATSCreds: filepath.Join(t.TempDir(), "missing.creds")}, config.NATSCreds},
		{map[string]string{config.NATSURL: "nats://h:4222", config.NATSReplicas: "2"}, config.NATSReplicas},
		{map[string]string{config.NATSURL: "nats://h:4222", config.NATSReplicas: "0"}, config.NATSReplicas},
		{map[string]string{config.NATSURL: "nats://h:4222", config.NATSReplicas: "three"}, config.NATSReplicas},
	} {
		_, err := config.LoadNATS(env(tc.env))
		checkErr(t, err, tc.bad)
	}
}

func TestBuyAndLevel(t *testing.T) {
	b, err := config.LoadBuy(env(nil))
	if err != nil || b.QPS != config.DefaultBuyQPS {
		t.Fatalf("default QPS: %+v %v", b, err)
	}
	for _, tc := range []struct {
		v    string
		want float64
		ok   bool
	}{{"0", 0, true}, {"2.5", 2.5, true}, {"-1", 0, false}, {"fast", 0, false}, {"NaN", 0, false}, {"1001", 0, false}} {
		b, err := config.LoadBuy(env(map[string]string{config.AliyunBuyQPS: tc.v}))
		if tc.ok && (err != nil || b.QPS != tc.want) {
			t.Errorf("QPS %q: %+v %v", tc.v, b, err)
		}
		if !tc.ok {
			checkErr(t, err, config.AliyunBuyQPS)
		}
	}
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, true},
		{with(fcEnv, config.BuyRole, "worker"), false},
		{map[string]string{config.FCFunctionName: "xnum-buy"}, true}, // not FC: FC sets more
		{with(fcEnv, config.BuyRole, "worker", config.BuyConsumer, "true"), true},
		{map[string]string{config.BuyConsumer: "false"}, false},
	} {
		if b, err := config.LoadBuy(env(tc.env)); err != nil || b.Consumer != tc.want {
			t.Errorf("consumer with %v: %+v %v, want %v", tc.env, b, err, tc.want)
		}
	}
	_, err = config.LoadBuy(env(map[string]string{config.BuyConsumer: "maybe"}))
	checkErr(t, err, config.BuyConsumer)
	if b, err := config.LoadBuy(env(map[string]string{config.EventTimeout: "110s"})); err != nil || b.EventTimeout != 110*time.Second {
		t.Errorf("event timeout: %+v %v", b, err)
	}
	_, err = config.LoadBuy(env(map[string]string{config.EventTimeout: "forever"}))
	checkErr(t, err, config.EventTimeout)
	if b, err := config.LoadBuy(env(map[string]string{config.ReportsWait: "1h"})); err != nil || b.ReportsWait != time.Hour {
		t.Errorf("reports wait: %+v %v", b, err)
	}
	for _, v := range []string{"500ms", "48h", "soon"} {
		_, err = config.LoadBuy(env(map[string]string{config.ReportsWait: v}))
		checkErr(t, err, config.ReportsWait)
	}
	if b, err := config.LoadBuy(env(map[string]string{config.BuyLease: "2s", config.BuySweepEvery: "1s", config.BuySweepIdle: "3s"})); err != nil ||
		b.Lease != 2*time.Second || b.SweepEvery != time.Second || b.SweepIdle != 3*time.Second {
		t.Errorf("lease and sweep: %+v %v", b, err)
	}
	for _, name := range []string{config.BuyLease, config.BuySweepEvery, config.BuySweepIdle} {
		for _, v := range []string{"10ms", "2h", "often"} {
			_, err = config.LoadBuy(env(map[string]string{name: v}))
			checkErr(t, err, name)
		}
	}
	if l, err := config.LoadLevel(env(map[string]string{config.LogLevel: "debug"})); err != nil || l != slog.LevelDebug {
		t.Errorf("level: %v %v", l, err)
	}
	_, err = config.LoadLevel(env(map[string]string{config.LogLevel: "chatty"}))
	checkErr(t, err, config.LogLevel)
}

func TestLambdaLogLevel(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want slog.Level
	}{
		{map[string]string{config.LambdaLogLevel: "TRACE"}, slog.LevelDebug},
		{map[string]string{config.LambdaLogLevel: "DEBUG", config.LogLevel: "error"}, slog.LevelDebug}, // Lambda's wins
		{map[string]string{config.LambdaLogLevel: "WARN", config.LogLevel: "debug"}, slog.LevelWarn},
		{map[string]string{config.LambdaLogLevel: "ERROR"}, slog.LevelError},
		{map[string]string{config.LambdaLogLevel: "FATAL"}, slog.LevelError},
		{map[string]string{config.LambdaLogLevel: "", config.LogLevel: "warn"}, slog.LevelWarn},
	} {
		if l, err := config.LoadLevel(env(tc.env)); err != nil || l != tc.want {
			t.Errorf("%v: level %v, %v; want %v", tc.env, l, err, tc.want)
		}
	}
	_, err := config.LoadLevel(env(map[string]string{config.LambdaLogLevel: "LOUD"}))
	checkErr(t, err, config.LambdaLogLevel)
}

func TestMetricsAddr(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:9090", ":9090", "[::1]:0", "localhost:9100"} {
		if got, err := config.LoadMetricsAddr(env(map[string]string{config.MetricsAddr: ok})); err != nil || got != ok {
			t.Errorf("%q: %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"9090", "host:port", "127.0.0.1:70000", "http://x:1", "a b:1"} {
		_, err := config.LoadMetricsAddr(env(map[string]string{config.MetricsAddr: bad}))
		checkErr(t, err, config.MetricsAddr)
	}
}

func TestCheckSDKDebug(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		bad string // the variable the error names; "" = starts
	}{
		{nil, ""},
		{map[string]string{config.Debug: "http,tea"}, ""},
		{map[string]string{config.Debug: "sdk"}, config.Debug},
		{map[string]string{config.Debug: "tea,sdk"}, config.Debug},
		{map[string]string{config.Debug: "tea, sdk"}, config.Debug},
		{map[string]string{config.Debug: "sdk", config.AllowSDKDebug: "1"}, ""},
		{map[string]string{config.Debug: "sdk", config.AllowSDKDebug: "0"}, config.Debug},
		{map[string]string{config.Debug: "sdk", config.AllowSDKDebug: "yes please"}, config.AllowSDKDebug},
	} {
		err := config.CheckSDKDebug(env(tc.env))
		if tc.bad == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		checkErr(t, err, tc.bad)
		if tc.bad == config.Debug && (!strings.Contains(err.Error(), "SecurityToken") || !strings.Contains(err.Error(), config.AllowSDKDebug)) {
			t.Errorf("the refusal does not say why or how: %v", err)
		}
	}
}

// fcEnv is what FC sets in every function instance.
var fcEnv = with(nil, testutil.OnFC...)

func TestOnFC(t *testing.T) {
	if !config.OnFC(env(fcEnv)) {
		t.Error("FC's variables present: not on FC")
	}
	for _, name := range []string{config.FCFunctionName, config.FCRegion, config.FCAccountID} {
		if config.OnFC(env(with(fcEnv, name, ""))) {
			t.Errorf("without %s: on FC", name)
		}
	}
	if config.OnFC(env(nil)) {
		t.Error("an empty environment is on FC")
	}
}

func TestLoadHTTPAddr(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
		bad  string
	}{
		{nil, "127.0.0.1:9000", ""},
		{map[string]string{config.Port: "8080"}, "127.0.0.1:8080", ""},
		{map[string]string{config.FCServerPort: "9001", config.Port: "8080"}, "127.0.0.1:9001", ""},
		{map[string]string{config.HTTPAddr: "0.0.0.0:8081", config.Port: "8080"}, "0.0.0.0:8081", ""},
		{map[string]string{config.HTTPAddr: "[::1]:8081"}, "[::1]:8081", ""},
		{fcEnv, "0.0.0.0:9000", ""},
		{with(fcEnv, config.FCServerPort, "9001", config.FCCustomListenPort, "9002"), "0.0.0.0:9002", ""},
		{with(fcEnv, config.HTTPAddr, "127.0.0.1:9000"), "127.0.0.1:9000", ""},
		{map[string]string{config.HTTPAddr: "9000"}, "", config.HTTPAddr},
		{map[string]string{config.HTTPAddr: "host:http"}, "", config.HTTPAddr},
		{map[string]string{config.Port: "eighty"}, "", config.Port},
	} {
		got, err := config.LoadHTTPAddr(env(tc.env))
		if tc.bad != "" {
			checkErr(t, err, tc.bad)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LoadHTTPAddr(%v) = %q, %v, want %q", tc.env, got, err, tc.want)
		}
	}
}

func TestBuyRole(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		role     string
		consumer bool
		bad      string
	}{
		{nil, config.BuyRoleAll, true, ""},
		{map[string]string{config.BuyRole: "worker"}, config.BuyRoleWorker, true, ""},
		{map[string]string{config.BuyRole: "intake"}, config.BuyRoleIntake, false, ""},
		{map[string]string{config.BuyRole: "intake", config.BuyConsumer: "false"}, config.BuyRoleIntake, false, ""},
		{with(fcEnv, config.BuyRole, "intake"), config.BuyRoleIntake, false, ""},
		{with(fcEnv, config.BuyRole, "worker"), config.BuyRoleWorker, false, ""},
		{with(fcEnv, config.BuyRole, "all"), config.BuyRoleAll, false, ""},
		{fcEnv, "", false, config.BuyRole},
		{map[string]string{config.BuyRole: "both"}, "", false, config.BuyRole},
		{map[string]string{config.BuyRole: "intake", config.BuyConsumer: "true"}, "", false, config.BuyConsumer},
	} {
		b, err := config.LoadBuy(env(tc.env))
		if tc.bad != "" {
			checkErr(t, err, tc.bad)
			continue
		}
		if err != nil || b.Role != tc.role || b.Consumer != tc.consumer {
			t.Errorf("LoadBuy(%v) = %+v, %v, want role %s consumer %v", tc.env, b, err, tc.role, tc.consumer)
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
		env  map[string]string
		ok   bool
	}{
		{"tls and creds", map[string]string{config.NATSURL: srv.ClientURL(), config.NATSCA: files.CA, config.NATSCreds: files.Creds["xnum-test"]}, true},
		{"a CA makes a nats:// URL TLS", map[string]string{config.NATSURL: plain, config.NATSCA: files.CA, config.NATSCreds: files.Creds["xnum-test"]}, true},
		{"no creds", map[string]string{config.NATSURL: srv.ClientURL(), config.NATSCA: files.CA}, false},
		{"no CA", map[string]string{config.NATSURL: srv.ClientURL(), config.NATSCreds: files.Creds["xnum-test"]}, false},
		{"plaintext", map[string]string{config.NATSURL: plain, config.NATSCreds: files.Creds["xnum-test"]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := config.LoadNATS(env(tc.env))
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
	n, err := config.LoadNATS(env(map[string]string{config.NATSURL: url, config.NATSNKey: seed, config.NATSCA: pem, config.NATSCert: pem, config.NATSKey: pem}))
	if err != nil || n.NKey != seed || n.CA != pem || len(n.Options()) != 3 || !n.Secured() {
		t.Fatalf("%+v %v", n, err)
	}
	for _, u := range []string{"nats://h:4222", "tls://h:4222", "nats://u:p@h:4222", "tls://u:p@h:4222,nats://u:p@h2:4222"} {
		if n, _ := config.LoadNATS(env(map[string]string{config.NATSURL: u})); n.Secured() {
			t.Errorf("%s without a CA or credentials is secured", u)
		}
	}
	if n, _ := config.LoadNATS(env(map[string]string{config.NATSURL: "tls://u:p@h:4222"})); !n.Secured() {
		t.Error("a password over TLS is not secured")
	}
	for _, tc := range []struct {
		env map[string]string
		bad string
	}{
		{map[string]string{config.NATSURL: url, config.NATSCreds: pem, config.NATSNKey: seed}, config.NATSNKey},
		{map[string]string{config.NATSURL: url, config.NATSCert: pem}, config.NATSKey},
		{map[string]string{config.NATSURL: url, config.NATSNKey: pem}, config.NATSNKey},
		{map[string]string{config.NATSURL: url, config.NATSCA: empty}, config.NATSCA},
		{map[string]string{config.NATSURL: url, config.NATSCA: filepath.Join(dir, "missing.pem")}, config.NATSCA},
		{map[string]string{config.NATSCA: pem}, config.NATSCA},
	} {
		_, err := config.LoadNATS(env(tc.env))
		checkErr(t, err, tc.bad)
		if err != nil && strings.Contains(err.Error(), "SUACSSL3") {
			t.Errorf("the error shows the seed: %v", err)
		}
	}
}
