package volcengine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/testutil"
)

const envSecret = "Sup3rSecretValue"

func TestConfigFromEnv(t *testing.T) {
	ok := testutil.Env{EnvAccessKey: "AKLTExample", EnvSecretKey: envSecret}
	c, err := ConfigFromEnv(ok.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != DefaultRegion || c.Endpoint != DefaultEndpoint || c.MaxRetries != DefaultMaxRetries || c.Timeout != DefaultTimeout || c.SecretAccessKey != envSecret {
		t.Errorf("defaults: %v", c)
	}
	c, err = ConfigFromEnv(ok.With(EnvEndpoint, "https://vms.example.com", EnvTimeout, "3s", EnvMaxRetries, "0", EnvSessionToken, "STS"+envSecret).Lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://vms.example.com" || c.Timeout != 3*time.Second || c.MaxRetries != -1 || c.SessionToken != "STS"+envSecret {
		t.Errorf("overrides: %v", c)
	}
	// What ConfigFromEnv read, New takes as it is: no retries stays none.
	if cl, err := New(c); err != nil || cl.svc.MaxRetries() != 0 {
		t.Errorf("New(%v): %v", c, err)
	}
	if c, _ = ConfigFromEnv(ok.With(EnvMaxRetries, "4").Lookup); c.MaxRetries != 4 {
		t.Errorf("retries: %d", c.MaxRetries)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, envSecret) {
		t.Errorf("a printed config shows the secret: %s", s)
	}
	for _, tc := range []struct {
		name string
		env  testutil.Env
		bad  string
	}{
		{"no access key", testutil.Env{EnvSecretKey: envSecret}, EnvAccessKey},
		{"no secret key", testutil.Env{EnvAccessKey: "AKLT"}, EnvSecretKey},
		{"secret with a space", ok.With(EnvSecretKey, envSecret+" x"), EnvSecretKey},
		{"token with a newline", ok.With(EnvSessionToken, envSecret+"\nx"), EnvSessionToken},
		{"region", ok.With(EnvRegion, "北京"), EnvRegion},
		{"endpoint", ok.With(EnvEndpoint, "cloud-vms.volcengineapi.com"), EnvEndpoint},
		{"endpoint credentials", ok.With(EnvEndpoint, "https://u:"+envSecret+"@h"), EnvEndpoint},
		{"timeout", ok.With(EnvTimeout, "-1s"), EnvTimeout},
		{"timeout a number", ok.With(EnvTimeout, "10"), EnvTimeout},
		{"retries a word", ok.With(EnvMaxRetries, "many"), EnvMaxRetries},
		{"retries negative", ok.With(EnvMaxRetries, "-1"), EnvMaxRetries},
		{"retries too many", ok.With(EnvMaxRetries, "11"), EnvMaxRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromEnv(tc.env.Lookup)
			testutil.WantEnvError(t, err, tc.bad, tc.env)
		})
	}
}

// Every field check may refuse from the environment names its variable.
func TestEnvNamesEveryField(t *testing.T) {
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		switch f := typ.Field(i).Name; f {
		case "Logger", "Observe", "RetryDelay": // not read from the environment
		default:
			if _, ok := envOf[f]; !ok {
				t.Errorf("Config.%s has no variable in envOf", f)
			}
		}
	}
}
