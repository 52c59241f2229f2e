// Package dypls emulates Alibaba Cloud's Dyplsapi (号码隐私保护, API version
// 2017-05-25) on its wire: an http.Handler that speaks the RPC style the
// cloud's gateway speaks, checks the RPC v1 HMAC-SHA1 signature the way the
// cloud does, and serves QuerySecretNoRemain, BuySecretNo,
// QuerySecretNoDetail and ReleaseSecretNo from an in-memory inventory.
//
// The cloud is unreachable from where xnum is built, so clients (the SDK's
// own and ours) are proven against this emulator over loopback HTTP. It
// answers with the cloud's codes in the cloud's two layers: gateway
// refusals with a non-2xx status and {RequestId, HostId, Code, Message,
// Recommend}, business refusals with HTTP 200 and {Code, Message,
// RequestId}. Responses are JSON when Format=JSON (what the SDK sends) and
// XML otherwise, the gateway's default.
//
// Choices where the cloud's behaviour is not published:
//   - 全国列表 answers SecretRemainDTO.City 全国列表 and Amount = the sum of
//     the listed cities, and lists cities by falling stock, then by name.
//   - A remain query for a city the emulator does not stock answers 0; a buy
//     there answers isv.NO_AVAILABLE_NUMBER.
//   - A released number is not put back on sale: carriers quarantine a
//     released number for months, so it simply leaves the emulator.
//   - The buy sells the lowest matching number, so tests can predict it.
//
// Faults (pkg/provider/emulator/fault) are decided per call after the
// request is authenticated: latency first, then a throttle (answered
// Throttling.User), an injected code in its own layer (see StatusOf), or a
// cut: the work is done and the connection is closed with no answer.
package dypls

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
	"github.com/xnum-dev/xnum/internal/wait"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// Version is the API version this emulator serves.
const Version = "2017-05-25"

// The default key pair, accepted when no WithKey or WithSTSToken is given.
const (
	DefaultAccessKeyID     = "xnum-dev-key"
	DefaultAccessKeySecret = "xnum-dev-secret"
)

// MaxSkew is how far a request's Timestamp may be from the emulator's clock.
const MaxSkew = 15 * time.Minute

// TimeLayout is how Dyplsapi writes times (PurchaseTime, operatingTime), in
// Asia/Shanghai.
const TimeLayout = cn.TimeLayout

const (
	hostID       = "dyplsapi.aliyuncs.com"
	maxBodyBytes = 64 << 10
	maxNonceLen  = 256
)

// Purchase is one number a BuySecretNo sold, including buys whose answer
// was cut.
type Purchase struct {
	PoolKey     string
	SecretNo    string
	City        string
	SpecID      int
	DisplayPool bool
	RequestID   string
	Time        time.Time
}

// Report statuses of a NumberManagementReport.
const (
	ReportCreated = 1
	ReportDeleted = 2
)

// Report is one NumberManagementReport message, as the cloud sends them on
// MNS when a number enters (status 1) or leaves (status 2) a pool.
type Report struct {
	SecretNo      string `json:"secretNo"`
	City          string `json:"city"`
	PartnerKey    string `json:"partnerKey"`
	OperatingTime string `json:"operatingTime"` // TimeLayout, Asia/Shanghai
	Status        int    `json:"status"`
	Vendor        int64  `json:"vendor"`
}

type credential struct {
	secret  string
	token   string    // STS keys only
	expires time.Time // zero: never
}

// Server is the emulated Dyplsapi. It is safe for concurrent use.
type Server struct {
	clock    func() time.Time
	faults   *fault.Set
	log      *slog.Logger
	creds    map[string]credential
	onReport func(Report)

	mu        sync.Mutex
	inv       *inventory
	nonces    *nonceStore
	calls     map[string]int
	purchases []Purchase
	reports   []Report
}

// Option configures a Server.
type Option func(*options)

type options struct {
	creds   map[string]credential
	clock   func() time.Time
	faults  *fault.Set
	log     *slog.Logger
	pools   []string
	numbers []Number
	custom  bool // WithNumbers was given: no default seed
	report  func(Report)
}

// WithKey makes the emulator accept a static AccessKey pair.
func WithKey(accessKeyID, secret string) Option {
	return func(o *options) { o.creds[accessKeyID] = credential{secret: secret} }
}

// WithSTSToken makes the emulator accept temporary credentials: requests
// with accessKeyID must carry SecurityToken token.
func WithSTSToken(accessKeyID, secret, token string) Option {
	return WithSTSTokenUntil(accessKeyID, secret, token, time.Time{})
}

// WithSTSTokenUntil is WithSTSToken for a token that expires at expires
// (by the emulator's clock); later requests meet InvalidSecurityToken.Expired.
func WithSTSTokenUntil(accessKeyID, secret, token string, expires time.Time) Option {
	return func(o *options) { o.creds[accessKeyID] = credential{secret: secret, token: token, expires: expires} }
}

// WithFaults injects the faults of set into every call.
func WithFaults(set *fault.Set) Option { return func(o *options) { o.faults = set } }

// WithClock replaces time.Now for timestamps, skew and STS expiry checks,
// and purchase times.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithPool adds a known pool key besides DefaultPoolKey.
func WithPool(poolKey string) Option {
	return func(o *options) { o.pools = append(o.pools, poolKey) }
}

// WithNumbers stocks nums instead of DefaultNumbers. Several WithNumbers add
// up; WithNumbers() alone starts with no stock at all.
func WithNumbers(nums ...Number) Option {
	return func(o *options) {
		o.custom = true
		o.numbers = append(o.numbers, nums...)
	}
}

// WithLogger logs each call (action, code, request id, key id, latency; never
// a secret, token or signature) at debug level. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithReportHook calls f with each NumberManagementReport as the emulator
// records it (Reports), in order: a number sold, a number released. It is
// how `xnum dev` and `xnum emulator --reports-nats` deliver them, as the
// cloud delivers them on MNS. f runs under the emulator's lock: it must hand
// the report off, not block or call the emulator.
func WithReportHook(f func(Report)) Option { return func(o *options) { o.report = f } }

// New returns an emulator with DefaultNumbers in stock (unless WithNumbers),
// DefaultPoolKey, and the default key pair (unless WithKey/WithSTSToken). It
// refuses numbers (WithNumbers) that are invalid or repeated.
func New(opts ...Option) (*Server, error) {
	o := options{creds: map[string]credential{}}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.creds) == 0 {
		o.creds[DefaultAccessKeyID] = credential{secret: DefaultAccessKeySecret}
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		clock:    o.clock,
		faults:   o.faults,
		log:      o.log,
		creds:    o.creds,
		onReport: o.report,
		inv:      newInventory(),
		nonces:   newNonceStore(maxNonces),
		calls:    map[string]int{},
	}
	nums := o.numbers
	if !o.custom {
		nums = DefaultNumbers()
	}
	if err := s.inv.add(nums); err != nil {
		return nil, err
	}
	s.inv.addPool(DefaultPoolKey)
	for _, p := range o.pools {
		s.inv.addPool(p)
	}
	return s, nil
}

// AddNumbers puts more numbers on sale. It adds none if any is invalid or
// already stocked or sold.
func (s *Server) AddNumbers(nums ...Number) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inv.add(nums)
}

// AddPool makes poolKey a known pool.
func (s *Server) AddPool(poolKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inv.addPool(poolKey)
}

// Stock returns the numbers on sale, in SecretNo order.
func (s *Server) Stock() []Number {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Number, 0, len(s.inv.stock))
	for _, n := range s.inv.stock {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Number) int { return strings.Compare(a.SecretNo, b.SecretNo) })
	return out
}

// Purchases returns every number BuySecretNo sold, in order, including the
// buys whose answer a fault cut.
func (s *Server) Purchases() []Purchase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.purchases)
}

// Reports returns the NumberManagementReport messages the cloud would have
// sent so far: one status 1 per purchase, one status 2 per release.
func (s *Server) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports)
}

// Calls returns how many authenticated calls reached action, faulted ones
// included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// call is one request being served.
type call struct {
	id     string
	format string // "JSON" or "XML"
	action string
	keyID  string
}

// ServeHTTP answers one RPC request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := &call{id: newRequestID(), format: "XML"}
	params, aerr := s.parse(w, r, c)
	if aerr == nil {
		aerr = s.authenticate(r.Method, params, c)
	}
	if aerr != nil {
		s.refuse(w, c, aerr)
		s.logCall(r.Context(), c, aerr.code, aerr.status, start)
		return
	}

	d := s.decide(c.action)
	if d.Delay > 0 && !wait.For(r.Context(), d.Delay) {
		// The client gave up; like a gateway whose client left, drop the call.
		s.logCall(r.Context(), c, "ClientGone", 0, start)
		return
	}
	switch {
	case d.Throttled:
		aerr = codeError(ThrottlingCode)
	case d.ErrorCode != "":
		aerr = codeError(d.ErrorCode)
	}
	if aerr != nil {
		s.refuse(w, c, aerr)
		s.logCall(r.Context(), c, aerr.code, aerr.status, start)
		return
	}

	body, aerr := actions[c.action](s, params, c)
	switch {
	case d.Cut:
		s.logCall(r.Context(), c, "Cut", 0, start)
		fault.Cut(w)
		return
	case d.Garble:
		s.logCall(r.Context(), c, "Garbled", http.StatusOK, start)
		fault.Garble(w)
		return
	case d.ErrorAfter != "" && aerr == nil:
		aerr = codeError(d.ErrorAfter)
	}
	if aerr != nil {
		s.refuse(w, c, aerr)
		s.logCall(r.Context(), c, aerr.code, aerr.status, start)
		return
	}
	s.write(w, c, http.StatusOK, c.action+"Response", body)
	s.logCall(r.Context(), c, "OK", http.StatusOK, start)
}

// required are the common parameters of every signed RPC request, in the
// order their absence is reported.
var required = []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"}

// parse reads the parameters from the query and a form body and checks what
// the gateway checks before it looks at credentials: method, format, action.
func (s *Server) parse(w http.ResponseWriter, r *http.Request, c *call) (url.Values, *apiError) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	perr := r.ParseForm()
	params := r.Form
	switch f := params.Get("Format"); f {
	case "JSON", "json":
		c.format = "JSON"
	case "", "XML", "xml":
	default:
		return nil, codeErrorf("InvalidParameter.Format", "Specified parameter Format is not valid.")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, codeError("UnsupportedHTTPMethod")
	}
	if perr != nil {
		return nil, codeErrorf("InvalidParameter", "The request could not be parsed: "+perr.Error())
	}
	if r.URL.Path != "/" && r.URL.Path != "" {
		return nil, codeError("InvalidApi.NotFound")
	}
	for _, p := range []string{"Action", "Version"} {
		if params.Get(p) == "" {
			return nil, missing(p)
		}
	}
	c.action = params.Get("Action")
	if params.Get("Version") != Version || actions[c.action] == nil {
		return nil, codeError("InvalidApi.NotFound")
	}
	for _, p := range required {
		if params.Get(p) == "" {
			return nil, missing(p)
		}
	}
	return params, nil
}

// authenticate checks the request the way the gateway does: signature
// method, timestamp, key, security token, signature, then the nonce, which
// is recorded only for a request that passed everything else.
func (s *Server) authenticate(method string, params url.Values, c *call) *apiError {
	if params.Get("SignatureMethod") != "HMAC-SHA1" {
		return codeError("InvalidSignatureMethod")
	}
	if params.Get("SignatureVersion") != "1.0" || params.Get("SignatureType") != "" {
		return codeError("IncompleteSignature")
	}
	now := s.clock()
	ts, err := time.Parse("2006-01-02T15:04:05Z", params.Get("Timestamp"))
	if err != nil {
		return codeError("InvalidTimeStamp.Format")
	}
	if skew := now.Sub(ts); skew > MaxSkew || skew < -MaxSkew {
		return codeError("InvalidTimeStamp.Expired")
	}

	c.keyID = params.Get("AccessKeyId")
	cred, ok := s.creds[c.keyID]
	if !ok {
		return codeError("InvalidAccessKeyId.NotFound")
	}
	token, hasToken := params.Get("SecurityToken"), params.Has("SecurityToken")
	switch {
	case cred.token == "" && hasToken:
		return codeError("InvalidSecurityToken.MismatchWithAccessKey")
	case cred.token == "":
	case token == "":
		return codeError("MissingSecurityToken")
	case !hmac.Equal([]byte(token), []byte(cred.token)):
		if s.knownToken(token) {
			return codeError("InvalidSecurityToken.MismatchWithAccessKey")
		}
		return codeError("InvalidSecurityToken.Malformed")
	case !cred.expires.IsZero() && !now.Before(cred.expires):
		return codeError("InvalidSecurityToken.Expired")
	}

	got, err := base64.StdEncoding.DecodeString(params.Get("Signature"))
	if err != nil || len(got) != 20 {
		return codeError("IncompleteSignature")
	}
	sts := StringToSign(method, params)
	if !hmac.Equal(got, mac(sts, cred.secret)) {
		// The cloud echoes its string to sign so the SDK can tell a wrong
		// secret from a wrong canonicalisation; it holds no secret.
		return codeErrorf("SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:"+sts)
	}

	nonce := params.Get("SignatureNonce")
	if len(nonce) > maxNonceLen {
		return codeErrorf("IncompleteSignature", "SignatureNonce is too long.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.nonces.use(c.keyID+"\x00"+nonce, ts.Add(MaxSkew), now) {
	case nonceUsed:
		return codeError("SignatureNonceUsed")
	case nonceFull:
		return codeErrorf("ServiceUnavailable", "Too many requests in the replay window.")
	}
	return nil
}

func (s *Server) knownToken(token string) bool {
	for _, c := range s.creds {
		if c.token != "" && hmac.Equal([]byte(c.token), []byte(token)) {
			return true
		}
	}
	return false
}

func (s *Server) decide(action string) fault.Decision {
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	if s.faults == nil {
		return fault.Decision{}
	}
	return s.faults.Decide(action)
}

// result is the part every answer of the product has.
type result struct {
	RequestId string `json:"RequestId" xml:"RequestId"`
	Code      string `json:"Code" xml:"Code"`
	Message   string `json:"Message" xml:"Message"`
}

func ok(c *call) result { return result{RequestId: c.id, Code: "OK", Message: "OK"} }

// gatewayError is the gateway's error document.
type gatewayError struct {
	RequestId string `json:"RequestId" xml:"RequestId"`
	HostId    string `json:"HostId" xml:"HostId"`
	Code      string `json:"Code" xml:"Code"`
	Message   string `json:"Message" xml:"Message"`
	Recommend string `json:"Recommend" xml:"Recommend"`
}

func (s *Server) refuse(w http.ResponseWriter, c *call, e *apiError) {
	if e.status == http.StatusOK {
		root := "Error"
		if c.action != "" {
			root = c.action + "Response"
		}
		s.write(w, c, http.StatusOK, root, result{RequestId: c.id, Code: e.code, Message: e.message})
		return
	}
	s.write(w, c, e.status, "Error", gatewayError{
		RequestId: c.id,
		HostId:    hostID,
		Code:      e.code,
		Message:   e.message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) + "&product=Dyplsapi",
	})
}

func (s *Server) write(w http.ResponseWriter, c *call, status int, root string, body any) {
	var (
		b   []byte
		err error
	)
	if c.format == "JSON" {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		b, err = json.Marshal(body)
	} else {
		w.Header().Set("Content-Type", "text/xml;charset=utf-8")
		b, err = xml.Marshal(xmlRoot{name: root, body: body})
		b = append([]byte(xml.Header), b...)
	}
	if err != nil {
		// Our own types always marshal; this is a bug worth a loud answer.
		http.Error(w, "dypls: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("x-acs-request-id", c.id)
	w.WriteHeader(status)
	w.Write(b)
}

// xmlRoot marshals body under the element name the action's answer has.
type xmlRoot struct {
	name string
	body any
}

func (x xmlRoot) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(x.body, xml.StartElement{Name: xml.Name{Local: x.name}})
}

func (s *Server) logCall(ctx context.Context, c *call, code string, status int, start time.Time) {
	s.log.LogAttrs(ctx, slog.LevelDebug, "dyplsapi call",
		slog.String("requestId", c.id),
		slog.String("action", c.action),
		slog.String("accessKeyId", c.keyID),
		slog.String("code", code),
		slog.Int("status", status),
		slog.Duration("latency", time.Since(start)),
	)
}

// newRequestID makes an id shaped like the cloud's, an upper-case UUID.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%X", b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
