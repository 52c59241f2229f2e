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
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/pkg/provider"
)

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

func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// sdkInit makes the SDK fill its package-level endpoint map once, before any
// concurrent use: dyplsapi.GetEndpointMap writes it on first use.
var sdkInit sync.Once

// New checks cfg and returns a Client. Errors name the field at fault and
// never hold the secret.
func New(cfg Config) (*Client, error) {
	if field, why := cfg.check(); field != "" {
		return nil, configError(field, why)
	}
	scheme, host, _ := envvar.SchemeHost(cfg.Endpoint) // checked
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sdkInit.Do(func() { dyplsapi.GetEndpointMap() })
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &Client{
		creds:          provider.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret, SecurityToken: cfg.SecurityToken},
		region:         cfg.Region,
		scheme:         scheme,
		host:           host,
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
