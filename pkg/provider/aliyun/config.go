package aliyun

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Name is the Provider of this package's errors.
const Name = "aliyun"

// Defaults of Config.
const (
	DefaultRegion         = "cn-hangzhou"
	DefaultEndpoint       = "https://dyplsapi.aliyuncs.com"
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultQueryAttempts  = 3
	maxQueryAttempts      = 10
	maxTimeout            = 10 * time.Minute
)

// The environment variables ConfigFromEnv reads. The first four are the
// Alibaba Cloud SDKs' own names, which FC also sets to the function role's
// STS credentials.
const (
	EnvAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	EnvAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	EnvSecurityToken   = "ALIBABA_CLOUD_SECURITY_TOKEN"
	EnvRegion          = "ALIBABA_CLOUD_REGION_ID"
	EnvEndpoint        = "XNUM_ALIYUN_ENDPOINT"
	EnvConnectTimeout  = "XNUM_ALIYUN_CONNECT_TIMEOUT"
	EnvReadTimeout     = "XNUM_ALIYUN_READ_TIMEOUT"
	EnvQueryAttempts   = "XNUM_ALIYUN_QUERY_ATTEMPTS"
)

// envOf names the variable of each field check can refuse.
var envOf = map[string]string{
	"AccessKeyID":     EnvAccessKeyID,
	"AccessKeySecret": EnvAccessKeySecret,
	"SecurityToken":   EnvSecurityToken,
	"Region":          EnvRegion,
	"Endpoint":        EnvEndpoint,
	"ConnectTimeout":  EnvConnectTimeout,
	"ReadTimeout":     EnvReadTimeout,
	"QueryAttempts":   EnvQueryAttempts,
}

// Config configures a Client.
type Config struct {
	// A static AccessKey pair, temporary when SecurityToken is set. It may be
	// empty when every call carries per-request credentials
	// (provider.ContextWithCredentials); a call with neither fails with
	// ErrUnauthorized before anything is sent.
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	// Region is the SDK's region id; default cn-hangzhou.
	Region string
	// Endpoint is the URL (scheme and host, e.g. http://127.0.0.1:9100 for
	// the emulator) the calls go to; default https://dyplsapi.aliyuncs.com.
	Endpoint string
	// ConnectTimeout bounds dialing (default 5s); ReadTimeout bounds one
	// call from sending its request to the end of its answer (default 10s).
	// A context deadline shortens both. At most 10 minutes each.
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// QueryAttempts is how many times a query may be sent (default 3, at
	// most 10). Buys are sent once.
	QueryAttempts int
	// Logger receives a debug line per call (action, code, request id,
	// latency); default: discard.
	Logger *slog.Logger
	// Observe, when set, is told of every request sent (metrics).
	Observe provider.CallObserver
}

// ConfigFromEnv reads a Config from the environment through lookup
// (os.LookupEnv): the AccessKey pair (required), ALIBABA_CLOUD_SECURITY_TOKEN,
// ALIBABA_CLOUD_REGION_ID, XNUM_ALIYUN_ENDPOINT, XNUM_ALIYUN_CONNECT_TIMEOUT
// and XNUM_ALIYUN_READ_TIMEOUT (durations such as 5s) and
// XNUM_ALIYUN_QUERY_ATTEMPTS. It checks the Config as New does and returns
// it with the defaults filled in. An error names the variable at fault and
// never shows a secret.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := Config{
		AccessKeyID:     envvar.Get(lookup, EnvAccessKeyID),
		AccessKeySecret: envvar.Get(lookup, EnvAccessKeySecret),
		SecurityToken:   envvar.Get(lookup, EnvSecurityToken),
		Region:          envvar.Get(lookup, EnvRegion),
		Endpoint:        envvar.Get(lookup, EnvEndpoint),
	}
	switch {
	case c.AccessKeyID == "":
		return Config{}, envvar.Bad(EnvAccessKeyID, "is required")
	case c.AccessKeySecret == "":
		return Config{}, envvar.Bad(EnvAccessKeySecret, "is required")
	}
	var err error
	if c.ConnectTimeout, err = envvar.Duration(lookup, EnvConnectTimeout); err != nil {
		return Config{}, err
	}
	if c.ReadTimeout, err = envvar.Duration(lookup, EnvReadTimeout); err != nil {
		return Config{}, err
	}
	if c.QueryAttempts, err = envvar.Int(lookup, EnvQueryAttempts, 0); err != nil {
		return Config{}, err
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
	case c.AccessKeyID != "" && c.AccessKeySecret == "":
		return "AccessKeySecret", "is required with an AccessKeyID"
	case c.AccessKeyID == "" && c.AccessKeySecret != "":
		return "AccessKeyID", "is required with an AccessKeySecret"
	case c.SecurityToken != "" && c.AccessKeyID == "":
		return "AccessKeyID", "is required with a SecurityToken"
	}
	c.Region = cmp.Or(c.Region, DefaultRegion)
	c.Endpoint = cmp.Or(c.Endpoint, DefaultEndpoint)
	if field, why := envvar.First(
		envvar.Field{Name: "AccessKeyID", Why: envvar.KeyID(c.AccessKeyID)},
		envvar.Field{Name: "AccessKeySecret", Why: envvar.Secret(c.AccessKeySecret, envvar.MaxSecretLen)},
		envvar.Field{Name: "SecurityToken", Why: envvar.Secret(c.SecurityToken, envvar.MaxTokenLen)},
		envvar.Field{Name: "Region", Why: envvar.Region(c.Region, DefaultRegion)},
		envvar.Field{Name: "Endpoint", Why: endpoint(c.Endpoint)},
		envvar.Field{Name: "ConnectTimeout", Why: envvar.Between(c.ConnectTimeout, maxTimeout)},
		envvar.Field{Name: "ReadTimeout", Why: envvar.Between(c.ReadTimeout, maxTimeout)},
	); field != "" {
		return field, why
	}
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	switch {
	case c.QueryAttempts < 0 || c.QueryAttempts > maxQueryAttempts:
		return "QueryAttempts", fmt.Sprintf("must be from 1 to %d (0 means %d), not %d", maxQueryAttempts, DefaultQueryAttempts, c.QueryAttempts)
	case c.QueryAttempts == 0:
		c.QueryAttempts = DefaultQueryAttempts
	}
	return "", ""
}

// endpoint checks an endpoint as envvar.Endpoint does, and allows plain
// http only to this machine (an emulator): the cloud is reached over TLS.
func endpoint(v string) string {
	scheme, host, why := envvar.SchemeHost(v)
	if why == "" && scheme == "http" && !loopback(host) {
		why = "may use http:// only for a loopback host (an emulator); the cloud is reached over https://"
	}
	return why
}

// loopback reports whether host (a URL's host, with or without a port)
// names this machine: localhost or a loopback address.
func loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// configError is New's refusal of a Config, naming the field.
func configError(field, reason string) error {
	return &provider.Error{Kind: provider.ErrInvalidParameter, Provider: Name, Op: "New", Field: field, Message: "Config." + field + " " + reason}
}

// String shows the key id only, so a stray %v never prints the secret.
func (c Config) String() string {
	return fmt.Sprintf("aliyun.Config{AccessKeyID: %s, Region: %s, Endpoint: %s}", c.AccessKeyID, c.Region, c.Endpoint)
}

// GoString keeps %#v as safe as %v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from logging the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("accessKeyId", c.AccessKeyID),
		slog.Bool("sts", c.SecurityToken != ""),
		slog.String("region", c.Region),
		slog.String("endpoint", c.Endpoint),
	)
}
