package aliyun

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/testutil"
)

func TestConfigValidation(t *testing.T) {
	ok := Config{AccessKeyID: keyID, AccessKeySecret: keySecret}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"secret without id", func(c *Config) { c.AccessKeyID = "" }, "AccessKeyID"},
		{"id without secret", func(c *Config) { c.AccessKeySecret = "" }, "AccessKeySecret"},
		{"token without key", func(c *Config) { c.AccessKeyID, c.AccessKeySecret, c.SecurityToken = "", "", stsToken }, "AccessKeyID"},
		{"id with delimiters", func(c *Config) { c.AccessKeyID = "a&b" }, "AccessKeyID"},
		{"region", func(c *Config) { c.Region = "cn hangzhou" }, "Region"},
		{"endpoint scheme", func(c *Config) { c.Endpoint = "ftp://x" }, "Endpoint"},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "dyplsapi.aliyuncs.com" }, "Endpoint"},
		{"endpoint path", func(c *Config) { c.Endpoint = "https://x/api" }, "Endpoint"},
		{"endpoint user", func(c *Config) { c.Endpoint = "https://" + keySecret + "@x" }, "Endpoint"},
		{"endpoint query", func(c *Config) { c.Endpoint = "https://x/?a=b" }, "Endpoint"},
		{"endpoint junk", func(c *Config) { c.Endpoint = "http://[::1" }, "Endpoint"},
		{"plain http to a remote host", func(c *Config) { c.Endpoint = "http://dyplsapi.aliyuncs.com" }, "Endpoint"},
		{"plain http to a private address", func(c *Config) { c.Endpoint = "http://10.0.0.8:9100" }, "Endpoint"},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "ConnectTimeout"},
		{"read timeout", func(c *Config) { c.ReadTimeout = -time.Second }, "ReadTimeout"},
		{"attempts", func(c *Config) { c.QueryAttempts = 11 }, "QueryAttempts"},
		{"negative attempts", func(c *Config) { c.QueryAttempts = -1 }, "QueryAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), "Config."+tt.field) {
				t.Fatalf("New = %v, want an error naming %s", err, tt.field)
			}
			noSecrets(t, "config error", err.Error())
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := New(Config{AccessKeyID: keyID, AccessKeySecret: keySecret})
	if err != nil {
		t.Fatal(err)
	}
	if c.region != DefaultRegion || c.scheme != "https" || c.host != "dyplsapi.aliyuncs.com" ||
		c.readTimeout != DefaultReadTimeout || c.connectTimeout != DefaultConnectTimeout || c.attempts != DefaultQueryAttempts || c.log == nil {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := New(Config{}); err != nil {
		t.Fatalf("a client for per-request credentials only: %v", err)
	}
	c, err = New(Config{Endpoint: "http://127.0.0.1:9100/", Region: "cn-shanghai", QueryAttempts: 1})
	if err != nil || c.scheme != "http" || c.host != "127.0.0.1:9100" || c.region != "cn-shanghai" || c.attempts != 1 {
		t.Fatalf("%v %+v", err, c)
	}
}

// Buys go over HTTP/1.1 only: HTTP/2's client may send a body-less request
// again after a stream reset.
func TestHTTP1Only(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.transport.Protocols; p == nil || !p.HTTP1() || p.HTTP2() || p.UnencryptedHTTP2() {
		t.Fatalf("protocols %v", p)
	}
}

func TestConfigPrintsNoSecret(t *testing.T) {
	cfg := Config{AccessKeyID: stsID, AccessKeySecret: stsSecret, SecurityToken: stsToken}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg)
	out := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg) + logs.String()
	noSecrets(t, "printed config", out)
	if !strings.Contains(out, stsID) {
		t.Fatalf("the key id should show: %s", out)
	}
}

func TestScrubber(t *testing.T) {
	s := scrubber{"se+cr/et", "tok=en"}
	in := `Post "http://h/?AccessKeyId=k&Signature=abc%2Bdef%3D&SecurityToken=tok%3Den&x=se%2Bcr%2Fet": EOF ` +
		`string to sign is:POST&%2F&AccessKeyId%3Dk%26SecurityToken%3Dtok%253Den%26Signature%3Dzz%252B%26SignatureMethod%3DHMAC-SHA1 ` +
		`raw se+cr/et tok=en`
	out := s.text(in)
	for _, leak := range []string{"se+cr/et", "se%2Bcr%2Fet", "tok=en", "tok%3Den", "tok%253Den", "abc%2Bdef", "zz%252B"} {
		if strings.Contains(out, leak) {
			t.Fatalf("%q left in %s", leak, out)
		}
	}
	for _, keep := range []string{"AccessKeyId=k", "SignatureMethod%3DHMAC-SHA1", "AccessKeyId%3Dk"} {
		if !strings.Contains(out, keep) {
			t.Fatalf("%q lost from %s", keep, out)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	ok := testutil.Env{EnvAccessKeyID: "LTAI5tExample", EnvAccessKeySecret: keySecret}
	c, err := ConfigFromEnv(ok.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "LTAI5tExample" || c.AccessKeySecret != keySecret || c.Region != DefaultRegion || c.Endpoint != DefaultEndpoint ||
		c.ConnectTimeout != DefaultConnectTimeout || c.ReadTimeout != DefaultReadTimeout || c.QueryAttempts != DefaultQueryAttempts {
		t.Errorf("defaults: %+v", c)
	}
	c, err = ConfigFromEnv(ok.With(
		EnvSecurityToken, stsToken,
		EnvRegion, "cn-shanghai",
		EnvEndpoint, "http://127.0.0.1:9100/",
		EnvConnectTimeout, "2s",
		EnvReadTimeout, "1m",
		EnvQueryAttempts, "5",
	).Lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.SecurityToken != stsToken || c.Region != "cn-shanghai" || c.Endpoint != "http://127.0.0.1:9100/" ||
		c.ConnectTimeout != 2*time.Second || c.ReadTimeout != time.Minute || c.QueryAttempts != 5 {
		t.Errorf("overrides: %+v", c)
	}
	if _, err := New(c); err != nil {
		t.Errorf("New refuses what ConfigFromEnv read: %v", err)
	}
	noSecrets(t, "printed config", fmt.Sprintf("%v %+v %#v", c, c, c))

	for _, tc := range []struct {
		name string
		env  testutil.Env
		bad  string
	}{
		{"no key id", testutil.Env{EnvAccessKeySecret: keySecret}, EnvAccessKeyID},
		{"no secret", testutil.Env{EnvAccessKeyID: "LTAI"}, EnvAccessKeySecret},
		{"blank secret", ok.With(EnvAccessKeySecret, "   "), EnvAccessKeySecret},
		{"newline in secret", ok.With(EnvAccessKeySecret, keySecret+"\nx"), EnvAccessKeySecret},
		{"space in key id", ok.With(EnvAccessKeyID, "LTAI 5t"), EnvAccessKeyID},
		{"token with space", ok.With(EnvSecurityToken, "CAIS "+stsToken), EnvSecurityToken},
		{"region", ok.With(EnvRegion, "cn hangzhou"), EnvRegion},
		{"endpoint scheme", ok.With(EnvEndpoint, "ftp://x"), EnvEndpoint},
		{"endpoint no host", ok.With(EnvEndpoint, "http://"), EnvEndpoint},
		{"endpoint credentials", ok.With(EnvEndpoint, "http://u:"+keySecret+"@h"), EnvEndpoint},
		{"endpoint path", ok.With(EnvEndpoint, "http://h/api"), EnvEndpoint},
		{"connect timeout without unit", ok.With(EnvConnectTimeout, "5"), EnvConnectTimeout},
		{"read timeout too long", ok.With(EnvReadTimeout, "1h"), EnvReadTimeout},
		{"read timeout negative", ok.With(EnvReadTimeout, "-1s"), EnvReadTimeout},
		{"attempts too many", ok.With(EnvQueryAttempts, "11"), EnvQueryAttempts},
		{"attempts a word", ok.With(EnvQueryAttempts, "three"), EnvQueryAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromEnv(tc.env.Lookup)
			testutil.WantEnvError(t, err, tc.bad, tc.env)
			noSecrets(t, "env error", err.Error())
		})
	}
}

// Every field check may refuse names its variable.
func TestEnvNamesEveryField(t *testing.T) {
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		f := typ.Field(i).Name
		if _, ok := envOf[f]; !ok && f != "Logger" && f != "Observe" {
			t.Errorf("Config.%s has no variable in envOf", f)
		}
	}
}
