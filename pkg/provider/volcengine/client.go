// Package volcengine lists Volcengine VMS number pools (NumberPoolList) and
// the numbers in them (NumberList) through the official SDK client,
// github.com/volcengine/volcengine-go-sdk/service/vms, whose requests are
// signed by github.com/volcengine/volc-sdk-golang/base (HMAC-SHA256).
//
// The SDK client is used rather than base.Credentials.Sign on a request of
// our own: it has typed inputs and outputs for both actions, takes a context,
// turns ResponseMetadata.Error into an error even with HTTP 200, and has a
// retryer that backs off on throttling and 5xx, which is safe here since both
// actions are reads. Its default session is not used, though: it reads
// credentials and regions from the environment and ~/.volcengine files, and
// changes http.DefaultClient's transport. The client is built from an
// explicit configuration instead, over its own http.Client, with https by
// default (volc-sdk-golang's base client defaults to plain http).
//
// Every failure is a *provider.Error with Provider "volcengine", the action
// as Op, and the cloud's code, message, request id and HTTP status; the
// codes are mapped to the taxonomy once, in this package. Neither errors nor
// logs carry the secret key, the session token or a signature.
//
// The per-request credentials of provider.CredentialsFromContext are not
// used: they are Alibaba Cloud's (FC's role), not Volcengine's.
package volcengine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/volcengine/volcengine-go-sdk/service/vms"
	"github.com/volcengine/volcengine-go-sdk/volcengine"
	"github.com/volcengine/volcengine-go-sdk/volcengine/client"
	"github.com/volcengine/volcengine-go-sdk/volcengine/credentials"
	"github.com/volcengine/volcengine-go-sdk/volcengine/defaults"
	"github.com/volcengine/volcengine-go-sdk/volcengine/request"
	"github.com/volcengine/volcengine-go-sdk/volcengine/response"
	"github.com/volcengine/volcengine-go-sdk/volcengine/volcengineerr"
	"github.com/volcengine/volcengine-go-sdk/volcengine/volcenginequery"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Client calls VMS. It implements provider.PoolLister and
// provider.NumberLister, and is safe for concurrent use.
type Client struct {
	svc      *vms.VMS
	http     *http.Client
	endpoint string
	region   string
	timeout  time.Duration
	log      *slog.Logger
	observe  provider.CallObserver
	secrets  []string // scrubbed from any message the cloud sends back, with the key id
}

var (
	_ provider.PoolLister   = (*Client)(nil)
	_ provider.NumberLister = (*Client)(nil)
)

// New returns a client for cfg, or an error naming the first field of cfg
// that is wrong.
func New(cfg Config) (*Client, error) {
	if field, why := cfg.check(); field != "" {
		return nil, configError(field, why)
	}
	scheme, host, _ := envvar.SchemeHost(cfg.Endpoint) // checked
	retries := max(cfg.MaxRetries, 0)                  // negative: none
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	hc := &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// The gateway does not redirect; a redirect is an error, not a
		// reason to send our signed request elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	endpoint := scheme + "://" + host
	retryer := client.DefaultRetryer{
		NumMaxRetries:    retries,
		MinRetryDelay:    cfg.RetryDelay,
		MinThrottleDelay: cfg.RetryDelay,
		// The SDK's default ceiling is 300 s; a call is bounded by its
		// Timeout anyway, and no single wait should take most of it.
		MaxRetryDelay:    5 * time.Second,
		MaxThrottleDelay: 5 * time.Second,
	}
	vc := volcengine.NewConfig().
		WithCredentials(credentials.NewStaticCredentials(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)).
		WithRegion(cfg.Region).
		WithEndpoint(host).
		WithDisableSSL(scheme == "http").
		WithHTTPClient(hc).
		WithMaxRetries(retries).
		WithLogLevel(volcengine.LogOff).
		WithLogger(volcengine.LoggerFunc(func(...any) {}))
	vc.Retryer = retryer
	svc := vms.New(staticConfig{client.Config{
		Config:        vc,
		Handlers:      defaults.Handlers(),
		Endpoint:      endpoint,
		SigningRegion: cfg.Region,
		SigningName:   vms.ServiceName,
	}})
	// The SDK prints to stdout when an answer is not VMS's JSON (a proxy's
	// error page, say); such answers become an error by their status here,
	// before its decoders see them.
	for _, l := range []struct {
		list *request.HandlerList
		h    request.NamedHandler
	}{
		{&svc.Handlers.Unmarshal, volcenginequery.UnmarshalHandler},
		{&svc.Handlers.UnmarshalError, volcenginequery.UnmarshalErrorHandler},
	} {
		if !l.list.Swap(l.h.Name, request.NamedHandler{Name: l.h.Name, Fn: onlyVMSAnswers(l.h.Fn)}) {
			return nil, fmt.Errorf("volcengine: the SDK has no %s handler to guard", l.h.Name)
		}
	}

	// The key id is not a secret, but an echo of it in a message would reach
	// whoever reads the error.
	secrets := []string{cfg.SecretAccessKey, cfg.AccessKeyID}
	if cfg.SessionToken != "" {
		secrets = append(secrets, cfg.SessionToken)
	}
	return &Client{
		svc:      svc,
		http:     hc,
		endpoint: endpoint,
		region:   cfg.Region,
		timeout:  cfg.Timeout,
		log:      cfg.Logger,
		observe:  cfg.Observe,
		secrets:  secrets,
	}, nil
}

// staticConfig hands vms.New a fixed client configuration, where a session
// would resolve one from the environment.
type staticConfig struct{ c client.Config }

func (s staticConfig) ClientConfig(string, ...*volcengine.Config) client.Config { return s.c }

// maxAnswer bounds an answer we read: a page of 100 records is some 50 KiB.
const maxAnswer = 8 << 20

// codeNotVMS marks an answer that is not VMS's JSON envelope.
const codeNotVMS = "NotVMSAnswer"

// onlyVMSAnswers passes an answer to the SDK's decoder next only if it is a
// JSON object with a well-formed ResponseMetadata; otherwise the call fails
// with codeNotVMS and the answer's status.
func onlyVMSAnswers(next func(*request.Request)) func(*request.Request) {
	return func(r *request.Request) {
		body, err := io.ReadAll(io.LimitReader(r.HTTPResponse.Body, maxAnswer))
		r.HTTPResponse.Body.Close()
		if err != nil {
			r.Error = volcengineerr.New(request.ErrCodeRead, "reading the answer failed", err)
			return
		}
		r.HTTPResponse.Body = io.NopCloser(bytes.NewReader(body))
		var envelope struct{ ResponseMetadata *response.ResponseMetadata }
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &envelope) != nil {
			r.Error = volcengineerr.NewRequestFailure(volcengineerr.New(codeNotVMS, "the answer is not VMS's JSON", nil), r.HTTPResponse.StatusCode, "")
			return
		}
		next(r)
	}
}

// ListPools returns one page of the number pools that match q
// (NumberPoolList). A zero q.Limit means provider.DefaultLimit.
func (c *Client) ListPools(ctx context.Context, q provider.PoolQuery) (provider.PoolPage, error) {
	const op = "NumberPoolList"
	if err := q.Validate(); err != nil {
		return provider.PoolPage{}, err
	}
	if q.Offset > math.MaxInt32 {
		return provider.PoolPage{}, provider.Invalid("offset", fmt.Sprintf("offset must be at most %d", math.MaxInt32))
	}
	q = q.WithDefaults()
	in := &vms.NumberPoolListInput{
		Offset: volcengine.Int32(int32(q.Offset)),
		Limit:  volcengine.Int32(int32(q.Limit)),
	}
	if q.PoolNo != "" {
		in.NumberPoolNo = volcengine.String(q.PoolNo)
	}
	if q.Name != "" {
		in.NumberPoolName = volcengine.String(q.Name)
	}
	if q.ServiceType != 0 {
		in.ServiceType = volcengine.Int32(int32(q.ServiceType))
	}
	if q.SubServiceType != 0 {
		in.SubServiceType = volcengine.Int32(int32(q.SubServiceType))
	}

	var out *vms.NumberPoolListOutput
	err := c.call(ctx, op, func(ctx context.Context, opts ...request.Option) (err error) {
		out, err = c.svc.NumberPoolListWithContext(ctx, in, opts...)
		if err == nil && out.Total == nil {
			return errNoResult
		}
		return err
	})
	if err != nil {
		return provider.PoolPage{}, err
	}
	page := provider.PoolPage{
		Total:   int(*out.Total),
		Offset:  int32Or(out.Offset, q.Offset),
		Limit:   int32Or(out.Limit, q.Limit),
		Records: make([]provider.Pool, 0, len(out.Records)),
	}
	for _, r := range out.Records {
		if r == nil {
			continue
		}
		page.Records = append(page.Records, provider.Pool{
			PoolNo:             volcengine.StringValue(r.NumberPoolNo),
			Name:               volcengine.StringValue(r.NumberPoolName),
			ServiceType:        int(volcengine.Int32Value(r.ServiceType)),
			ServiceTypeName:    volcengine.StringValue(r.ServiceTypeName),
			SubServiceType:     int(volcengine.Int32Value(r.SubServiceType)),
			SubServiceTypeName: volcengine.StringValue(r.SubServiceTypeName),
			NumberCount:        int(volcengine.Int32Value(r.NumberCount)),
		})
	}
	return page, nil
}

// ListNumbers returns one page of the numbers that match q (NumberList). A
// zero q.Limit means provider.DefaultLimit. A zero TypeCode does not filter,
// so mobile numbers (VMS's type 0) cannot be asked for alone.
func (c *Client) ListNumbers(ctx context.Context, q provider.NumberQuery) (provider.NumberPage, error) {
	const op = "NumberList"
	if err := q.Validate(); err != nil {
		return provider.NumberPage{}, err
	}
	if q.Offset > math.MaxInt32 {
		return provider.NumberPage{}, provider.Invalid("offset", fmt.Sprintf("offset must be at most %d", math.MaxInt32))
	}
	for _, v := range []int{q.PoolType, q.StatusCode, q.TypeCode} {
		if v > math.MaxInt32 {
			return provider.NumberPage{}, provider.Invalid("poolType", "poolType, statusCode and typeCode must fit in 32 bits")
		}
	}
	q = q.WithDefaults()
	in := &vms.NumberListInput{
		Offset: volcengine.Int32(int32(q.Offset)),
		Limit:  volcengine.Int32(int32(q.Limit)),
	}
	if q.PoolNo != "" {
		in.NumberPoolNo = volcengine.String(q.PoolNo)
	}
	if len(q.Numbers) > 0 {
		in.NumberList = volcengine.StringSlice(q.Numbers)
	}
	if q.PoolType != 0 {
		in.NumberPoolTypeCode = volcengine.Int32(int32(q.PoolType))
	}
	if q.StatusCode != 0 {
		in.NumberStatusCode = volcengine.Int32(int32(q.StatusCode))
	}
	if q.TypeCode != 0 {
		in.NumberTypeCode = volcengine.Int32(int32(q.TypeCode))
	}

	var out *vms.NumberListOutput
	err := c.call(ctx, op, func(ctx context.Context, opts ...request.Option) (err error) {
		out, err = c.svc.NumberListWithContext(ctx, in, opts...)
		if err == nil && out.Total == nil {
			return errNoResult
		}
		return err
	})
	if err != nil {
		return provider.NumberPage{}, err
	}
	page := provider.NumberPage{
		Total:   int(*out.Total),
		Offset:  int32Or(out.Offset, q.Offset),
		Limit:   int32Or(out.Limit, q.Limit),
		Records: make([]provider.Number, 0, len(out.Records)),
	}
	for _, r := range out.Records {
		if r == nil {
			continue
		}
		page.Records = append(page.Records, provider.Number{
			Number:           volcengine.StringValue(r.Number),
			Location:         volcengine.StringValue(r.NumberLocation),
			PoolNo:           volcengine.StringValue(r.NumberPoolNo),
			PoolName:         volcengine.StringValue(r.NumberPoolName),
			PoolTypeCode:     int(volcengine.Int32Value(r.NumberPoolTypeCode)),
			PoolTypeDesc:     volcengine.StringValue(r.NumberPoolTypeDesc),
			StatusCode:       int(volcengine.Int32Value(r.NumberStatusCode)),
			StatusDesc:       volcengine.StringValue(r.NumberStatusDesc),
			TypeCode:         int(volcengine.Int32Value(r.NumberTypeCode)),
			TypeDesc:         volcengine.StringValue(r.NumberTypeDesc),
			ServiceTypeCode:  int(volcengine.Int32Value(r.ServiceTypeCode)),
			ServiceTypeDesc:  volcengine.StringValue(r.ServiceTypeDesc),
			QualificationNo:  volcengine.StringValue(r.QualificationNo),
			CurrentBindCount: int(volcengine.Int32Value(r.CurrentBindCount)),
			PurchaseTime:     volcengine.StringValue(r.NumberPurchaseTime),
		})
	}
	return page, nil
}

func int32Or(v *int32, def int) int {
	if v == nil {
		return def
	}
	return int(*v)
}

// AllPools yields every pool that matches q, page after page; it is
// provider.AllPools over c.
func (c *Client) AllPools(ctx context.Context, q provider.PoolQuery) iter.Seq2[provider.Pool, error] {
	return provider.AllPools(ctx, c, q)
}

// AllNumbers yields every number that matches q, page after page from
// q.Offset with q.Limit as the page size. It stops at the first error, which
// it yields.
func (c *Client) AllNumbers(ctx context.Context, q provider.NumberQuery) iter.Seq2[provider.Number, error] {
	return func(yield func(provider.Number, error) bool) {
		q = q.WithDefaults()
		for {
			page, err := c.ListNumbers(ctx, q)
			if err != nil {
				yield(provider.Number{}, err)
				return
			}
			for _, n := range page.Records {
				if !yield(n, nil) {
					return
				}
			}
			q.Offset += len(page.Records)
			if len(page.Records) == 0 || q.Offset >= page.Total {
				return
			}
		}
	}
}

// call sends one action through the SDK within the client's timeout, and
// turns its failure into a *provider.Error. send must pass opts to the SDK.
func (c *Client) call(ctx context.Context, op string, send func(context.Context, ...request.Option) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var req *request.Request
	capture := func(r *request.Request) {
		req = r
		// The SDK retries 429 and 5xx by status; VMS also reports its
		// failures with HTTP 200, which only their codes tell apart.
		r.RetryErrorCodes = retryCodes
		r.ThrottleErrorCodes = throttleCodes
		if c.observe != nil {
			r.Handlers.CompleteAttempt.PushBack(func(r *request.Request) {
				c.observe(ctx, provider.Call{Provider: Name, Action: op, Code: attemptCode(r.Error), Took: time.Since(r.AttemptTime)})
			})
		}
	}
	start := time.Now()
	err := send(ctx, capture)

	attrs := []slog.Attr{slog.String("provider", Name), slog.String("op", op), slog.Duration("duration", time.Since(start))}
	if req != nil {
		attrs = append(attrs, slog.Int("attempts", req.RetryCount+1))
		if req.Metadata.RequestId != "" {
			attrs = append(attrs, slog.String("providerRequestId", req.Metadata.RequestId))
		}
	}
	if err == nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "volcengine call", attrs...)
		return nil
	}
	perr := c.mapError(ctx, op, err, req)
	attrs = append(attrs, slog.String("kind", string(perr.Kind)), slog.String("code", perr.Code),
		slog.Int("status", perr.Status), slog.String("error", perr.Error()))
	c.log.LogAttrs(ctx, slog.LevelWarn, "volcengine call failed", attrs...)
	return perr
}

// attemptCode is the provider.Call code of one attempt that ended with err:
// "OK", the cloud's code, or the SDK's code of a request that got no answer
// from VMS.
func attemptCode(err error) string {
	var ve volcengineerr.Error
	switch {
	case err == nil:
		return "OK"
	case errors.As(err, &ve) && ve.Code() != "":
		return ve.Code()
	}
	return string(provider.ErrUnavailable)
}

// scrub makes a message the cloud sent back safe to keep in an error that
// reaches callers, the ledger and events: our secrets, key id and the
// signature of req removed wherever they appear (a gateway may echo what it
// was given), then provider.SafeMessage (a quoted canonical request or string
// to sign cut, other credentials by name, one bounded line).
func (c *Client) scrub(msg string, req *request.Request) string {
	secrets := c.secrets
	if req != nil && req.HTTPRequest != nil {
		if h := req.HTTPRequest.Header.Get("Authorization"); h != "" {
			if i := strings.Index(h, "Signature="); i >= 0 && len(h) > i+len("Signature=") {
				secrets = append(secrets[:len(secrets):len(secrets)], h[i+len("Signature="):])
			}
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return provider.SafeMessage(msg)
}
