package volcengine

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Name is the Provider of this package's errors.
const Name = "volcengine"

// Defaults of Config.
const (
	DefaultRegion     = "cn-beijing"
	DefaultEndpoint   = "https://cloud-vms.volcengineapi.com"
	DefaultTimeout    = 10 * time.Second
	DefaultMaxRetries = 2
	// MaxMaxRetries bounds Config.MaxRetries.
	MaxMaxRetries = 10
	maxTimeout    = 10 * time.Minute
)

// The environment variables ConfigFromEnv reads. The first four are the
// Volcengine SDKs' own names.
const (
	EnvAccessKey    = "VOLC_ACCESSKEY"
	EnvSecretKey    = "VOLC_SECRETKEY"
	EnvSessionToken = "VOLC_SESSIONTOKEN"
	EnvRegion       = "VOLC_REGION"
	EnvEndpoint     = "XNUM_VOLC_ENDPOINT"
	EnvTimeout      = "XNUM_VOLC_TIMEOUT"
	EnvMaxRetries   = "XNUM_VOLC_MAX_RETRIES"
)

// envOf names the variable of each field check can refuse.
var envOf = map[string]string{
	"AccessKeyID":     EnvAccessKey,
	"SecretAccessKey": EnvSecretKey,
	"SessionToken":    EnvSessionToken,
	"Region":          EnvRegion,
	"Endpoint":        EnvEndpoint,
	"Timeout":         EnvTimeout,
	"MaxRetries":      EnvMaxRetries,
}

// Config configures a Client.
type Config struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // set for STS credentials
	// Region signs the requests; default cn-beijing.
	Region string
	// Endpoint is the URL (scheme and host, no path) of the API; empty means
	// https://cloud-vms.volcengineapi.com. http is for the emulator only.
	Endpoint string
	// Timeout bounds one call, its retries included; default 10 s, at most
	// 10 minutes. A shorter deadline on the call's context wins.
	Timeout time.Duration
	// MaxRetries is how often a call that met throttling or a provider
	// failure is sent again; 0 means 2, a negative number none.
	MaxRetries int
	// RetryDelay is the first backoff before a retry, doubled with jitter
	// each time; 0 means the SDK's 30 ms, or 500 ms after throttling.
	RetryDelay time.Duration
	// Logger gets one line per call; nil logs nothing.
	Logger *slog.Logger
	// Observe, when set, is told of every request sent, each retry too
	// (metrics).
	Observe provider.CallObserver
}

// ConfigFromEnv reads a Config from the environment through lookup
// (os.LookupEnv): VOLC_ACCESSKEY and VOLC_SECRETKEY (required),
// VOLC_SESSIONTOKEN, VOLC_REGION, XNUM_VOLC_ENDPOINT, XNUM_VOLC_TIMEOUT (a
// duration such as 10s) and XNUM_VOLC_MAX_RETRIES (the number of retries
// itself, 0: none; unset keeps the default). It checks the Config as New
// does and returns it with the defaults filled in. An error names the
// variable at fault and never shows a secret.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := Config{
		AccessKeyID:     envvar.Get(lookup, EnvAccessKey),
		SecretAccessKey: envvar.Get(lookup, EnvSecretKey),
		SessionToken:    envvar.Get(lookup, EnvSessionToken),
		Region:          envvar.Get(lookup, EnvRegion),
		Endpoint:        envvar.Get(lookup, EnvEndpoint),
	}
	var err error
	if c.Timeout, err = envvar.Duration(lookup, EnvTimeout); err != nil {
		return Config{}, err
	}
	if envvar.Get(lookup, EnvMaxRetries) != "" {
		n, err := envvar.Int(lookup, EnvMaxRetries, 0)
		switch {
		case err != nil:
			return Config{}, err
		case n < 0:
			return Config{}, envvar.Bad(EnvMaxRetries, fmt.Sprintf("must be from 0 (no retries) to %d, not %d", MaxMaxRetries, n))
		case n == 0:
			n = -1 // Config reads 0 as the default
		}
		c.MaxRetries = n
	}
	if field, why := c.check(); field != "" {
		return Config{}, envvar.Bad(envOf[field], why)
	}
	return c, nil
}

// check fills in c's defaults and returns the first field that is wrong
// and why, or "" when c is fine. A reason never quotes a secret.
func (c *Config) check() (field, reason string) {
	switch {
	case c.AccessKeyID == "":
		return "AccessKeyID", "is required"
	case c.SecretAccessKey == "":
		return "SecretAccessKey", "is required"
	}
	c.Region = cmp.Or(c.Region, DefaultRegion)
	c.Endpoint = cmp.Or(c.Endpoint, DefaultEndpoint)
	if field, why := envvar.First(
		envvar.Field{Name: "AccessKeyID", Why: envvar.KeyID(c.AccessKeyID)},
		envvar.Field{Name: "SecretAccessKey", Why: envvar.Secret(c.SecretAccessKey, envvar.MaxSecretLen)},
		envvar.Field{Name: "SessionToken", Why: envvar.Secret(c.SessionToken, envvar.MaxTokenLen)},
		envvar.Field{Name: "Region", Why: envvar.Region(c.Region, DefaultRegion)},
		envvar.Field{Name: "Endpoint", Why: envvar.Endpoint(c.Endpoint)},
		envvar.Field{Name: "Timeout", Why: envvar.Between(c.Timeout, maxTimeout)},
	); field != "" {
		return field, why
	}
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.RetryDelay < 0 {
		return "RetryDelay", "must not be negative"
	}
	switch {
	case c.MaxRetries > MaxMaxRetries:
		return "MaxRetries", fmt.Sprintf("must be at most %d, not %d", MaxMaxRetries, c.MaxRetries)
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	}
	return "", ""
}

// configError is New's refusal of a Config, naming the field.
func configError(field, reason string) error {
	return &provider.Error{Kind: provider.ErrInvalidParameter, Provider: Name, Op: "New", Field: field, Message: "Config." + field + " " + reason}
}

// String keeps %v of a Config from printing the secret or the token.
func (c Config) String() string {
	return fmt.Sprintf("volcengine.Config{AccessKeyID: %s, Region: %s, Endpoint: %s, Timeout: %v, MaxRetries: %d, SecretAccessKey: %s, SessionToken: %s}",
		c.AccessKeyID, c.Region, c.Endpoint, c.Timeout, c.MaxRetries, redacted(c.SecretAccessKey), redacted(c.SessionToken))
}

// GoString keeps %#v as safe as %v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from logging the secret or the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("accessKeyId", c.AccessKeyID),
		slog.Bool("sts", c.SessionToken != ""),
		slog.String("region", c.Region),
		slog.String("endpoint", c.Endpoint),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}
