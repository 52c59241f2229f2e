// Package aliyun is xnum's client of Alibaba Cloud Dyplsapi (号码隐私保护,
// 2017-05-25), built on the official SDK
// (github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi). It implements
// provider.Inventory (QuerySecretNoRemain), provider.Purchaser
// (BuySecretNo), provider.NumberInspector (QuerySecretNoDetail) and
// provider.Releaser (ReleaseSecretNo), and maps every documented Dyplsapi
// code of both of the cloud's layers — gateway refusals (non-2xx,
// *errors.ServerError) and business refusals (HTTP 200 with Code != "OK",
// which the SDK returns with a nil error) — onto the provider taxonomy.
//
// # Buys are never retried
//
// BuySecretNo spends money and has no idempotency key: a buy sent twice may
// buy two numbers. So the SDK's AutoRetry is off (it re-sends on any
// transport error or 5xx with a fresh nonce, and a buy was seen to reach the
// cloud three times for one call), and this package never re-sends a buy.
// Only an answer on the allowlist of refusals (errors.go: the gateway's
// throttling, signature, credential, RAM and parameter checks, and the
// business checks of the request, account and stock) proves a buy bought
// nothing; it keeps its kind. Every other outcome of a sent buy returns
// provider.ErrInDoubt: a 5xx or an isp.* code (the cloud may fail on its way
// back, after it sold the number), a code nobody documented, an answer that
// did not come from the cloud (a proxy's 502/504 page, an unreadable body, an
// OK naming no number), a timeout or a connection that ended after the
// request was written. The caller must settle it (QuerySecretNoDetail of a
// known number, the NumberManagementReport messages, or an operator) rather
// than buy again. A buy that failed before its request was written (refused
// dial, DNS) is ErrUnavailable: nothing was sent. Buys go over HTTP/1.1:
// Go's HTTP/2 client may send a body-less POST again after a stream reset. The request is tracked on the wire
// (net/http/httptrace) to tell these apart. Once written, a buy is not
// abandoned when its context is cancelled: it runs to its answer or its
// timeout, never later than the context's deadline, so that the outcome is
// known whenever the cloud answers.
//
// Queries (Remain, NumberDetail) are re-sent up to Config.QueryAttempts
// times with exponential backoff and jitter when throttled or when the
// cloud or the network was unavailable, within the context's deadline.
// Releasing is irreversible and a repeated release of a released number is
// refused (isv.NO_NOT_EXIST), so a release is re-sent only after an answer
// that proves nothing happened (throttled); a release whose answer was lost
// is ErrInDoubt.
//
// The SDK takes no context. Each call runs on its own SDK client over a
// shared connection pool, with the call's context bound to its HTTP request
// and a timeout no longer than the context's deadline. Per-request
// credentials (provider.ContextWithCredentials, e.g. FC's STS credentials)
// take precedence over the configured ones.
//
// Secrets never reach an error or a log line: transport errors carry the
// request URL, whose Signature and SecurityToken are redacted, and the
// cloud's SignatureDoesNotMatch message (which echoes the string to sign,
// token included) is cut. Do not run with DEBUG=sdk: the SDK then prints
// signed request URLs to stdout itself (the xnum binaries refuse to start
// with it).
package aliyun

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Defaults of Config.
const (
	DefaultRegion         = "cn-hangzhou"
	DefaultEndpoint       = "https://dyplsapi.aliyuncs.com"
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultQueryAttempts  = 3
	maxQueryAttempts      = 10
)

// Name is the Provider of this package's errors.
const Name = "aliyun"

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
	// A context deadline shortens both.
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

// Client calls Dyplsapi. It is safe for concurrent use.
type Client struct {
	creds          provider.Credentials
	region         string
	scheme, host   string
	connectTimeout time.Duration
	readTimeout    time.Duration
	attempts       int
	log            *slog.Logger
	observe        provider.CallObserver
	transport      *http.Transport
	sdkClients     sync.Pool // of *dyplsapi.Client for creds, one call at a time each

	// Backoff of query retries: full jitter over base·2^n, capped.
	backoffBase, backoffMax time.Duration
}

var (
	_ provider.Inventory       = (*Client)(nil)
	_ provider.Purchaser       = (*Client)(nil)
	_ provider.NumberInspector = (*Client)(nil)
	_ provider.Releaser        = (*Client)(nil)
)

// regionID tells a region id: 1 to 64 of a-z, 0-9 and '-'.
func regionID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// loopback reports whether host names this machine: localhost or a loopback
// address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sdkInit makes the SDK fill its package-level endpoint map once, before any
// concurrent use: dyplsapi.GetEndpointMap writes it on first use.
var sdkInit sync.Once

// New checks cfg and returns a Client. Errors name the field at fault and
// never hold the secret.
func New(cfg Config) (*Client, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Endpoint) // validated
	sdkInit.Do(func() { dyplsapi.GetEndpointMap() })
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &Client{
		creds:          provider.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret, SecurityToken: cfg.SecurityToken},
		region:         cfg.Region,
		scheme:         u.Scheme,
		host:           u.Host,
		connectTimeout: cfg.ConnectTimeout,
		readTimeout:    cfg.ReadTimeout,
		attempts:       cfg.QueryAttempts,
		log:            cfg.Logger,
		observe:        cfg.Observe,
		transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: cfg.ConnectTimeout,
			// HTTP/1.1 only: net/http's HTTP/2 client may retry a request
			// without a body (Dyplsapi's POSTs carry everything in the query)
			// after a stream reset, and a buy must be sent once.
			Protocols:             http1Only(),
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		backoffBase: 100 * time.Millisecond,
		backoffMax:  2 * time.Second,
	}, nil
}

func validate(cfg *Config) error {
	bad := func(field, why string) error { return fmt.Errorf("aliyun: Config.%s %s", field, why) }
	switch {
	case cfg.AccessKeyID != "" && cfg.AccessKeySecret == "":
		return bad("AccessKeySecret", "is required with an AccessKeyID")
	case cfg.AccessKeyID == "" && cfg.AccessKeySecret != "":
		return bad("AccessKeyID", "is required with an AccessKeySecret")
	case cfg.SecurityToken != "" && cfg.AccessKeyID == "":
		return bad("AccessKeyID", "is required with a SecurityToken")
	case strings.ContainsAny(cfg.AccessKeyID, " \t\r\n&=?#"):
		return bad("AccessKeyID", "must not contain spaces or URL delimiters")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if !regionID(cfg.Region) {
		return bad("Region", "must be a region id such as cn-hangzhou")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	u, err := url.Parse(cfg.Endpoint)
	switch {
	case err != nil:
		return bad("Endpoint", "is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("Endpoint", "must start with http:// or https://")
	case u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return bad("Endpoint", "must be a scheme and a host (and port), nothing else")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return bad("Endpoint", "may use http:// only for a loopback host (an emulator); the cloud is reached over https://")
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{{"ConnectTimeout", &cfg.ConnectTimeout, DefaultConnectTimeout}, {"ReadTimeout", &cfg.ReadTimeout, DefaultReadTimeout}} {
		if *d.v < 0 {
			return bad(d.field, "must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch {
	case cfg.QueryAttempts < 0 || cfg.QueryAttempts > maxQueryAttempts:
		return bad("QueryAttempts", fmt.Sprintf("must be between 1 and %d (0 means %d)", maxQueryAttempts, DefaultQueryAttempts))
	case cfg.QueryAttempts == 0:
		cfg.QueryAttempts = DefaultQueryAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// CloseIdleConnections closes the pooled connections not in use.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// credentials returns the call's credentials: the context's, else the
// configured ones.
func (c *Client) credentials(ctx context.Context, op string) (provider.Credentials, error) {
	creds, ok := provider.CredentialsFromContext(ctx)
	if !ok {
		creds = c.creds
	}
	if creds.AccessKeyID == "" || creds.AccessKeySecret == "" {
		return creds, &provider.Error{Kind: provider.ErrUnauthorized, Provider: Name, Op: op,
			Message: "no credentials: configure an AccessKey or pass per-request credentials"}
	}
	return creds, nil
}
