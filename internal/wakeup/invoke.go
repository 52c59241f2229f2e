package wakeup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// FC 3.0's InvokeFunction.
const (
	apiVersion = "2023-03-30"
	action     = "InvokeFunction"
	// HeaderInvocationType chooses Sync or Async.
	HeaderInvocationType = "X-Fc-Invocation-Type"
	// headerRequestID carries FC's id of the invocation in the answer.
	headerRequestID = "X-Fc-Request-Id"
)

// Client invokes FC 3.0 functions asynchronously: POST
// /2023-03-30/functions/{name}/invocations with X-Fc-Invocation-Type: Async,
// signed ACS3-HMAC-SHA256, answered 202 once FC has queued the invocation.
type Client struct {
	endpoint string
	creds    provider.Credentials
	http     *http.Client
	now      func() time.Time
}

// Config configures a Client.
type Config struct {
	// Endpoint is FC's, https://{account id}.{region}.fc.aliyuncs.com (or
	// the -internal one from a VPC, or the emulator's).
	Endpoint string
	// Credentials sign a call whose context carries none of its own
	// (provider.CredentialsFromContext: on FC, the function role's, from the
	// invocation's x-fc-* headers).
	Credentials provider.Credentials
	// HTTPClient sends the calls (default: a client of its own).
	HTTPClient *http.Client
}

// NewClient returns a client of FC at cfg.Endpoint.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wakeup: the FC endpoint must be an http(s) URL with a host, not %q", cfg.Endpoint)
	}
	c := &Client{endpoint: u.Scheme + "://" + u.Host, creds: cfg.Credentials, http: cfg.HTTPClient, now: time.Now}
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// InvokeAsync asks FC to run function with payload, and returns FC's request
// id of the invocation once FC accepted it (202). The function runs later,
// retried by FC as the function's asynchronous invocation configuration
// says. Errors carry the taxonomy: Unauthorized for refused credentials or
// a missing fc:InvokeFunction permission, NotFound for an unknown function,
// InvalidParameter, Throttled, Unavailable.
func (c *Client) InvokeAsync(ctx context.Context, function string, payload []byte) (string, error) {
	creds, err := c.credentials(ctx)
	if err != nil {
		return "", err
	}
	u := c.endpoint + "/" + apiVersion + "/functions/" + url.PathEscape(function) + "/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return "", fail(provider.ErrInvalidParameter, err)
	}
	// As the generated fc-20230330 client sends a payload: a byte stream.
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(HeaderInvocationType, "Async")
	sign(req, payload, action, apiVersion, creds, c.now(), nonce())

	resp, err := c.http.Do(req)
	if err != nil {
		// Name the host only: the error of a cancelled call quotes the URL.
		return "", fail(provider.ErrUnavailable, fmt.Errorf("POST %s: %w", req.URL.Host, unwrapURL(err)))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	id := resp.Header.Get(headerRequestID)
	if resp.StatusCode == http.StatusAccepted {
		return id, nil
	}
	return id, answerError(resp.StatusCode, id, body)
}

// credentials are the context's when they can sign, else the configured
// ones. A temporary key without its token cannot: FC's newer custom
// runtimes send the role's key in x-fc-* headers without
// x-fc-security-token, and keep the whole set in the environment.
func (c *Client) credentials(ctx context.Context) (provider.Credentials, error) {
	if cr, ok := provider.CredentialsFromContext(ctx); ok && (cr.SecurityToken != "" || !strings.HasPrefix(cr.AccessKeyID, "STS.")) {
		return cr, nil
	}
	if c.creds.AccessKeyID != "" {
		return c.creds, nil
	}
	return provider.Credentials{}, fail(provider.ErrUnauthorized,
		errors.New("no credentials: the invocation carries no usable role key and ALIBABA_CLOUD_ACCESS_KEY_ID is unset"))
}

// errorBody is FC 3.0's error answer; FC 2's names are read too.
type errorBody struct {
	Code         string
	Message      string
	RequestID    string `json:"RequestId"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func answerError(status int, id string, body []byte) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	code, msg := first(eb.Code, eb.ErrorCode), first(eb.Message, eb.ErrorMessage)
	if msg == "" {
		msg = fmt.Sprintf("FC answered HTTP %d", status)
	}
	return &provider.Error{Kind: kindOf(status), Provider: "fc", Op: action, Code: code, Message: msg,
		RequestID: first(eb.RequestID, id), Status: status}
}

func kindOf(status int) provider.Kind {
	switch {
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		return provider.ErrInvalidParameter
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return provider.ErrUnauthorized
	case status == http.StatusNotFound:
		return provider.ErrNotFound
	case status == http.StatusTooManyRequests:
		return provider.ErrThrottled
	default:
		return provider.ErrUnavailable
	}
}

func fail(k provider.Kind, err error) error {
	return &provider.Error{Kind: k, Provider: "fc", Op: action, Err: err}
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
