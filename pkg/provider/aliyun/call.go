package aliyun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"

	"github.com/xnum-dev/xnum/internal/wait"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// exchange is one request of an action and the response it fills.
type exchange struct {
	req    requests.AcsRequest
	resp   responses.AcsResponse
	answer func() (code, message, requestID string)
}

// policy is what an action's unknown outcome means, and so when it may be
// sent again.
type policy int

const (
	readOnly     policy = iota // no effect: re-sent when throttled or unavailable
	spendsMoney                // BuySecretNo: sent once
	irreversible               // ReleaseSecretNo: re-sent only when throttled
)

// do sends the exchanges mk makes until one succeeds or the policy stops.
// A new exchange per attempt keeps the SDK's request state out of the retry.
func (c *Client) do(ctx context.Context, op string, p policy, mk func() exchange) error {
	attempts := c.attempts
	if p == spendsMoney {
		attempts = 1
	}
	for n := 1; ; n++ {
		err := c.once(ctx, op, p, n, mk())
		if err == nil || n >= attempts || !mayResend(p, err) || !c.backoff(ctx, n) {
			return err
		}
	}
}

func mayResend(p policy, err error) bool {
	switch k := provider.KindOf(err); p {
	case readOnly:
		return k.Retryable()
	case irreversible:
		return k == provider.ErrThrottled
	}
	return false
}

// backoff waits before attempt n+1: full jitter over base·2^(n-1), capped.
// It reports false, at once, when the wait would outlast ctx.
func (c *Client) backoff(ctx context.Context, n int) bool {
	d := c.backoffMax
	if n-1 < 30 {
		d = min(c.backoffBase<<(n-1), c.backoffMax)
	}
	d = rand.N(d + 1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	return wait.For(ctx, d)
}

// once sends one exchange and returns nil or a *provider.Error.
func (c *Client) once(ctx context.Context, op string, p policy, attempt int, x exchange) error {
	creds, err := c.credentials(ctx, op)
	if err != nil {
		return err
	}
	scrub := scrubber{creds.AccessKeySecret, creds.SecurityToken, creds.AccessKeyID}
	timeout := c.readTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ctx.Err(); err != nil || timeout <= 0 {
		if err == nil {
			err = context.DeadlineExceeded
		}
		return &provider.Error{Kind: provider.ErrUnavailable, Provider: Name, Op: op, Message: "not sent", Err: err}
	}

	rt := &callTransport{base: c.transport, ctx: ctx, detach: p == spendsMoney}
	var client *dyplsapi.Client
	if creds == c.creds {
		if v := c.sdkClients.Get(); v != nil {
			client = v.(*dyplsapi.Client)
			client.SetTransport(rt)
		}
	}
	if client == nil {
		if client, err = c.sdkClient(creds, rt); err != nil {
			return &provider.Error{Kind: provider.ErrInternal, Provider: Name, Op: op, Message: scrub.message("SDK client: " + err.Error())}
		}
	}
	if creds == c.creds {
		defer c.sdkClients.Put(client)
	}
	x.req.SetDomain(c.host)
	x.req.SetScheme(c.scheme)
	x.req.GetQueryParams()["RegionId"] = c.region // see sdkClient
	x.req.SetReadTimeout(timeout)
	x.req.SetConnectTimeout(c.connectTimeout)

	start := time.Now()
	err = doAction(client, x)
	latency := time.Since(start)
	scrub = append(scrub, x.req.GetQueryParams()["Signature"])
	out := classify(ctx, op, p, x, err, rt.sent.Load(), scrub)
	c.logCall(ctx, op, attempt, creds, x, out, rt.sent.Load(), latency)
	if out == nil {
		c.observeCall(ctx, op, nil, latency)
		return nil
	}
	c.observeCall(ctx, op, out, latency)
	return out
}

// sdkClient makes the SDK client of one call. The SDK's client is not safe
// for concurrent use (each call rewrites its http.Client's timeout), and it
// signs with the credentials it was made with (DoActionWithSigner ignores
// its signer in this SDK version), so each call gets its own over the
// shared transport. It is made without a region: the SDK checks a region
// with a regular expression it compiles anew for every client, which was
// part of every cold start and of every call with per-request credentials
// (FC's role); each request carries the region as its RegionId instead, the
// parameter the SDK would have signed.
func (c *Client) sdkClient(creds provider.Credentials, rt http.RoundTripper) (*dyplsapi.Client, error) {
	cfg := sdk.NewConfig()
	cfg.AutoRetry = false // see the package doc: a retried buy can buy twice
	cfg.MaxRetryTime = 0
	cfg.Transport = rt
	cfg.Scheme = strings.ToUpper(c.scheme)
	var cred auth.Credential = credentials.NewAccessKeyCredential(creds.AccessKeyID, creds.AccessKeySecret)
	if creds.SecurityToken != "" {
		cred = credentials.NewStsTokenCredential(creds.AccessKeyID, creds.AccessKeySecret, creds.SecurityToken)
	}
	return dyplsapi.NewClientWithOptions("", cfg, cred)
}

// classify turns the SDK's outcome of one exchange into nil or an error of
// the taxonomy. An answer from the cloud, in either layer, is a refusal with
// its code; no answer is "not sent" or, once the request was written, an
// unknown outcome.
func classify(ctx context.Context, op string, p policy, x exchange, err error, sent bool, scrub scrubber) *provider.Error {
	e := &provider.Error{Provider: Name, Op: op}
	var (
		se *sdkerrors.ServerError
		ce *sdkerrors.ClientError
	)
	switch {
	case err == nil:
		code, msg, id := x.answer()
		if code == "OK" {
			return nil
		}
		e.Status, e.Code, e.RequestID = x.resp.GetHttpStatus(), code, id
		if code == "" {
			e.Kind, e.Message = unknownOutcome(p), "the answer has no Code"
			return e
		}
		e.Kind, e.Message = kindOf(code, e.Status), scrub.message(msg)
		answered(p, e)

	case errors.As(err, &se):
		e.Status, e.Code, e.RequestID = se.HttpStatus(), se.ErrorCode(), se.RequestId()
		e.Message = scrub.message(se.Message())
		e.Kind = kindOf(e.Code, e.Status)
		answered(p, e)

	case errors.As(err, &ce) && ce.ErrorCode() == sdkerrors.JsonUnmarshalErrorCode:
		e.Status = x.resp.GetHttpStatus()
		e.Kind, e.Message = unknownOutcome(p), "the answer could not be read"
		e.Err = scrub.err(ce.OriginError())

	case !sent:
		e.Kind, e.Message = provider.ErrUnavailable, "not sent"
		if ce != nil {
			e.Kind = provider.ErrInternal // the SDK refused to build the request
		}
		e.Err = withContext(ctx, scrub.err(err))

	default:
		e.Err = withContext(ctx, scrub.err(err))
		if p == readOnly {
			e.Kind, e.Message = provider.ErrUnavailable, "no answer"
		} else {
			e.Kind, e.Message = provider.ErrInDoubt, "sent, but no answer came; the outcome is unknown"
		}
	}
	return e
}

// answered applies the money rule to an answer of a call that is not
// read-only: only a refusal on the allowlist proves nothing happened;
// anything else (a 5xx, an isp.* code, an unknown code, a page from a proxy
// with no code at all) may have come after the work.
func answered(p policy, e *provider.Error) {
	if p == readOnly || refusedBeforeActing(e.Code) {
		return
	}
	if _, ok := releaseRefusals[e.Code]; ok && p == irreversible {
		return
	}
	what := e.Code
	if what == "" {
		what = http.StatusText(e.Status) + " without a code"
	}
	e.Kind = provider.ErrInDoubt
	e.Message = "answered " + what + ", which does not prove the call was refused before the cloud acted; the outcome is unknown: " + e.Message
}

// unknownOutcome is the kind of an answer that does not tell what happened:
// a query is sent again (provider.ErrUnavailable is retried), a call that
// spends money is in doubt.
func unknownOutcome(p policy) provider.Kind {
	if p == readOnly {
		return provider.ErrUnavailable
	}
	return provider.ErrInDoubt
}

// withContext adds the context's error, when it is why the call ended, so
// errors.Is(err, context.DeadlineExceeded) holds.
func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

func (c *Client) logCall(ctx context.Context, op string, attempt int, creds provider.Credentials, x exchange, err *provider.Error, sent bool, latency time.Duration) {
	level, code, id, status, kind := slog.LevelDebug, "OK", "", 0, ""
	if err == nil {
		_, _, id = x.answer()
		status = x.resp.GetHttpStatus()
	} else {
		code, id, status, kind = err.Code, err.RequestID, err.Status, string(err.Kind)
		if err.Kind == provider.ErrInDoubt {
			level = slog.LevelWarn
		}
	}
	c.log.LogAttrs(ctx, level, "dyplsapi call",
		slog.String("action", op),
		slog.Int("attempt", attempt),
		slog.String("code", code),
		slog.String("kind", kind),
		slog.String("requestId", id),
		slog.Int("status", status),
		slog.Bool("sent", sent),
		slog.String("accessKeyId", creds.AccessKeyID),
		slog.Duration("latency", latency),
	)
}

// observeCall tells Config.Observe of one request.
func (c *Client) observeCall(ctx context.Context, op string, err error, took time.Duration) {
	if c.observe != nil {
		c.observe(ctx, provider.Call{Provider: Name, Action: op, Code: provider.CallCode(err), Took: took})
	}
}

// doAction runs the SDK call on a goroutine of its own. The SDK makes each
// request's SignatureNonce from the calling goroutine's id, which it reads
// by formatting the whole stack (runtime.Stack): under an HTTP server's
// middleware that walk costs more than the rest of the signature. A fresh
// goroutine's stack is a dozen frames deep.
func doAction(client *dyplsapi.Client, x exchange) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("aliyun: the SDK panicked: %v", p)
			}
		}()
		done <- client.DoAction(x.req, x.resp)
	}()
	return <-done
}
