// Package config reads the functions' configuration from the environment,
// checked at start: each loader answers one *Error naming the variable that
// is missing or wrong, and never prints a secret's value. The environment is
// read through a Lookup (os.LookupEnv in main), so tests pass a map.
package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// The variables read.
const (
	AliyunAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	AliyunAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	AliyunSecurityToken   = "ALIBABA_CLOUD_SECURITY_TOKEN"
	AliyunRegion          = "ALIBABA_CLOUD_REGION_ID"
	AliyunEndpoint        = "XNUM_ALIYUN_ENDPOINT"
	AliyunConnectTimeout  = "XNUM_ALIYUN_CONNECT_TIMEOUT"
	AliyunReadTimeout     = "XNUM_ALIYUN_READ_TIMEOUT"
	AliyunQueryAttempts   = "XNUM_ALIYUN_QUERY_ATTEMPTS"
	AliyunBuyQPS          = "XNUM_ALIYUN_BUY_QPS"
	BuyConsumer           = "XNUM_BUY_CONSUMER"
	BuyRole               = "XNUM_BUY_ROLE"
	EventTimeout          = "XNUM_EVENT_TIMEOUT"
	ReportsWait           = "XNUM_REPORTS_WAIT"
	BuyLease              = "XNUM_BUY_LEASE"
	BuySweepEvery         = "XNUM_BUY_SWEEP_EVERY"
	BuySweepIdle          = "XNUM_BUY_SWEEP_IDLE"
	FCFunctionName        = "FC_FUNCTION_NAME" // set by FC in every function instance

	VolcAccessKey    = "VOLC_ACCESSKEY"
	VolcSecretKey    = "VOLC_SECRETKEY"
	VolcSessionToken = "VOLC_SESSIONTOKEN"
	VolcRegion       = "VOLC_REGION"
	VolcEndpoint     = "XNUM_VOLC_ENDPOINT"
	VolcTimeout      = "XNUM_VOLC_TIMEOUT"
	VolcMaxRetries   = "XNUM_VOLC_MAX_RETRIES"

	NATSURL   = "NATS_URL"
	NATSCreds = "NATS_CREDS" // a .creds file: the user's JWT and nkey seed
	NATSNKey  = "NATS_NKEY"  // an nkey seed file, for a server that lists nkey users
	NATSCA    = "NATS_CA"    // PEM file of the CAs that sign the server's certificate
	NATSCert  = "NATS_CERT"  // PEM file of a client certificate, for mutual TLS
	NATSKey   = "NATS_KEY"   // its private key

	NATSReplicas = "XNUM_NATS_REPLICAS"

	LogLevel = logging.LevelEnv
	// LambdaLogLevel is set by Lambda when the function's logging config
	// filters application logs by level (advanced logging controls).
	LambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"
	// MetricsAddr is where a long-lived process serves GET /metrics,
	// /healthz and /readyz; unset: nowhere.
	MetricsAddr = "XNUM_METRICS_ADDR"
)

// Defaults.
const (
	DefaultAliyunRegion = "cn-hangzhou"
	DefaultVolcRegion   = "cn-beijing"
	DefaultBuyQPS       = 5.0
)

// Lookup reads one environment variable, as os.LookupEnv does.
type Lookup func(key string) (string, bool)

// Error is a missing or wrong variable. Its message names the variable and
// never holds a secret's value.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Var + " " + e.Reason }

func bad(name, reason string) error { return &Error{Var: name, Reason: reason} }

// get returns a variable's value with surrounding blanks removed; set and
// empty counts as unset.
func get(lookup Lookup, name string) string {
	v, _ := lookup(name)
	return strings.TrimSpace(v)
}

// LoadAliyun reads the Dyplsapi client's configuration. The AccessKey pair is
// required (FC puts the function role's STS credentials in these variables
// at start, and in each request's headers after); a security token makes it
// temporary.
func LoadAliyun(lookup Lookup) (aliyun.Config, error) {
	c := aliyun.Config{
		AccessKeyID:     get(lookup, AliyunAccessKeyID),
		AccessKeySecret: get(lookup, AliyunAccessKeySecret),
		SecurityToken:   get(lookup, AliyunSecurityToken),
		Region:          get(lookup, AliyunRegion),
	}
	if err := keyPair(AliyunAccessKeyID, c.AccessKeyID, AliyunAccessKeySecret, c.AccessKeySecret); err != nil {
		return aliyun.Config{}, err
	}
	if err := secret(AliyunSecurityToken, c.SecurityToken, false, 16<<10); err != nil {
		return aliyun.Config{}, err
	}
	if c.Region == "" {
		c.Region = DefaultAliyunRegion
	}
	var err error
	if err = region(AliyunRegion, c.Region); err != nil {
		return aliyun.Config{}, err
	}
	if c.Endpoint, err = endpoint(lookup, AliyunEndpoint); err != nil {
		return aliyun.Config{}, err
	}
	if c.ConnectTimeout, err = duration(lookup, AliyunConnectTimeout); err != nil {
		return aliyun.Config{}, err
	}
	if c.ReadTimeout, err = duration(lookup, AliyunReadTimeout); err != nil {
		return aliyun.Config{}, err
	}
	if c.QueryAttempts, err = integer(lookup, AliyunQueryAttempts, 1, 10, 0); err != nil {
		return aliyun.Config{}, err
	}
	return c, nil
}

// LoadVolcengine reads the VMS client's configuration. XNUM_VOLC_MAX_RETRIES is
// the number of retries itself (0: none); unset keeps the client's default.
func LoadVolcengine(lookup Lookup) (volcengine.Config, error) {
	c := volcengine.Config{
		AccessKeyID:     get(lookup, VolcAccessKey),
		SecretAccessKey: get(lookup, VolcSecretKey),
		SessionToken:    get(lookup, VolcSessionToken),
		Region:          get(lookup, VolcRegion),
	}
	if err := keyPair(VolcAccessKey, c.AccessKeyID, VolcSecretKey, c.SecretAccessKey); err != nil {
		return volcengine.Config{}, err
	}
	if err := secret(VolcSessionToken, c.SessionToken, false, 16<<10); err != nil {
		return volcengine.Config{}, err
	}
	if c.Region == "" {
		c.Region = DefaultVolcRegion
	}
	var err error
	if err = region(VolcRegion, c.Region); err != nil {
		return volcengine.Config{}, err
	}
	if c.Endpoint, err = endpoint(lookup, VolcEndpoint); err != nil {
		return volcengine.Config{}, err
	}
	if c.Timeout, err = duration(lookup, VolcTimeout); err != nil {
		return volcengine.Config{}, err
	}
	if get(lookup, VolcMaxRetries) != "" {
		n, err := integer(lookup, VolcMaxRetries, 0, 10, 0)
		if err != nil {
			return volcengine.Config{}, err
		}
		c.MaxRetries = n
		if n == 0 {
			c.MaxRetries = -1 // the client reads 0 as its default
		}
	}
	return c, nil
}

// NATS is where the functions' NATS services and queue live, and how they
// prove who they are to it. It holds file names, never a secret itself.
type NATS struct {
	URL   string // one URL or a comma-separated list; empty: no NATS
	Creds string // .creds file (user JWT and seed); optional
	NKey  string // nkey seed file; optional, not with Creds
	CA    string // CA certificates to trust for the server's; optional
	Cert  string // client certificate, with Key; optional
	Key   string
	// Replicas of the JetStream objects a function creates when they are
	// missing (1, 3 or 5; default 1). Existing objects keep theirs.
	Replicas int
}

// Enabled reports whether NATS is configured.
func (n NATS) Enabled() bool { return n.URL != "" }

// Secured reports whether the connection is encrypted (a tls:// or wss://
// URL, or a CA or client certificate, which make nats.go require TLS) and
// signs in (a .creds file, an nkey, or a user and password in the URL).
// Whoever reaches an unsecured NATS can publish orders and rewrite the
// ledger.
func (n NATS) Secured() bool {
	if n.URL == "" {
		return false
	}
	encrypted, signsIn := n.CA != "" || n.Cert != "", n.Creds != "" || n.NKey != ""
	all := true
	for _, s := range strings.Split(n.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		all = all && (u.Scheme == "tls" || u.Scheme == "wss")
		signsIn = signsIn || u.User != nil
	}
	return (encrypted || all) && signsIn
}

// Options are the connection options the configuration implies. The files
// are read when the connection is made, so a rotated credential takes
// effect at the next connection.
func (n NATS) Options() []nats.Option {
	var opts []nats.Option
	switch {
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.NKey != "":
		opts = append(opts, nkeyFromSeed(n.NKey))
	}
	if n.CA != "" {
		opts = append(opts, nats.RootCAs(n.CA))
	}
	if n.Cert != "" {
		opts = append(opts, nats.ClientCert(n.Cert, n.Key))
	}
	return opts
}

// nkeyFromSeed signs in with the nkey whose seed is in file; a file that can
// no longer be read fails the connection with that error.
func nkeyFromSeed(file string) nats.Option {
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		return func(*nats.Options) error { return fmt.Errorf("%s: %w", NATSNKey, err) }
	}
	return opt
}

// LoadNATS reads NATS_URL and how to connect to it: NATS_CREDS or
// NATS_NKEY (who the functions are), NATS_CA, NATS_CERT and NATS_KEY (TLS);
// and XNUM_NATS_REPLICAS. All are optional, but each file must be readable,
// and none goes without a URL.
func LoadNATS(lookup Lookup) (NATS, error) {
	n := NATS{
		URL:   get(lookup, NATSURL),
		Creds: get(lookup, NATSCreds),
		NKey:  get(lookup, NATSNKey),
		CA:    get(lookup, NATSCA),
		Cert:  get(lookup, NATSCert),
		Key:   get(lookup, NATSKey),
		// Replicas: 1 unless XNUM_NATS_REPLICAS says otherwise, below.
		Replicas: 1,
	}
	if n.URL != "" {
		for _, s := range strings.Split(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || u.Host == "" {
				return NATS{}, bad(NATSURL, "must be nats://host:port (or a comma-separated list of such URLs)")
			}
			switch u.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				return NATS{}, bad(NATSURL, "must use the nats, tls, ws or wss scheme, not "+strconv.Quote(u.Scheme))
			}
		}
	}
	files := []struct{ name, path string }{{NATSCreds, n.Creds}, {NATSNKey, n.NKey}, {NATSCA, n.CA}, {NATSCert, n.Cert}, {NATSKey, n.Key}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if n.URL == "" {
			return NATS{}, bad(f.name, "is set but "+NATSURL+" is not")
		}
		// The error names the file, never its content.
		b, err := os.ReadFile(f.path)
		if err != nil {
			return NATS{}, bad(f.name, "must name a readable file: "+err.Error())
		}
		if len(b) == 0 {
			return NATS{}, bad(f.name, "names an empty file: "+f.path)
		}
	}
	switch {
	case n.Creds != "" && n.NKey != "":
		return NATS{}, bad(NATSNKey, "is set with "+NATSCreds+"; a connection signs in with one of them")
	case (n.Cert == "") != (n.Key == ""):
		return NATS{}, bad(NATSKey, "and "+NATSCert+" go together: a client certificate and its key")
	}
	if n.NKey != "" {
		if _, err := nats.NkeyOptionFromSeed(n.NKey); err != nil {
			return NATS{}, bad(NATSNKey, "must name a file holding an nkey seed (its content is not shown)")
		}
	}
	if s := get(lookup, NATSReplicas); s != "" {
		// An even count survives no more lost servers than one fewer.
		switch s {
		case "1", "3", "5":
			n.Replicas, _ = strconv.Atoi(s)
		default:
			return NATS{}, bad(NATSReplicas, "must be 1, 3 or 5 (servers keeping each JetStream object), not "+strconv.Quote(s))
		}
	}
	return n, nil
}

// The roles of a buy process (XNUM_BUY_ROLE).
const (
	// BuyRoleIntake takes orders and never buys: over HTTP, and from queue
	// triggers (EventBridge from MNS, RocketMQ, Kafka), which it only hands
	// to JetStream. s.yaml's xnum-buy, the function callers reach.
	BuyRoleIntake = "intake"
	// BuyRoleWorker buys: the timer's drains, the intake's wake-ups, direct
	// invocations, the long-lived consumer; it serves no routes. s.yaml's
	// xnum-buy-worker.
	BuyRoleWorker = "worker"
	// BuyRoleAll is both, in one process: the default off FC.
	BuyRoleAll = "all"
)

// Buy is the buy function's configuration.
type Buy struct {
	// Role is what the process serves: BuyRoleIntake, BuyRoleWorker or
	// BuyRoleAll.
	Role string
	// QPS is the account's BuySecretNo calls per second, which every worker
	// on the same JetStream shares; 0 means no limit.
	QPS float64
	// Consumer runs the long-lived JetStream consumer beside the HTTP routes.
	// FC freezes an instance between invocations, so there the worker runs
	// per event (timer drain, EventBridge) instead: the default is off on FC
	// and on elsewhere.
	Consumer bool
	// EventTimeout bounds an event invocation (a timer drain, an event
	// carrying an order) that comes without a deadline of FC's, so the worker
	// starts no buy it could not finish: FC tells a custom runtime neither the
	// function's timeout nor a deadline (go1 gets both, and they win). Set it
	// a little under the function's timeout; 0: no bound.
	EventTimeout time.Duration
	// ReportsWait is how long after a buy's answer was due the worker waits
	// for the cloud's report of its number before it leaves the attempt in
	// doubt to an operator; 0: the settler's default (10m).
	ReportsWait time.Duration
	// Lease is how long a delivery's claim on an order lasts without a
	// ledger write: after a worker dies, its orders wait that long for
	// another; 0: the worker's default (45s). Keep it above the longest
	// BuySecretNo call.
	Lease time.Duration
	// SweepEvery and SweepIdle: how often a long-lived consumer looks for
	// open orders nothing drives, and how long such an order must have been
	// idle to be published again; 0: the worker's defaults (30s, 1m).
	SweepEvery, SweepIdle time.Duration
}

// LoadBuy reads XNUM_BUY_ROLE (intake, worker or all; default all off FC,
// required on FC, where the HTTP function and the event function are two),
// XNUM_ALIYUN_BUY_QPS (default 5; 0: no limit), XNUM_BUY_CONSUMER (true or
// false; default false on FC, true elsewhere; never with the intake role),
// XNUM_EVENT_TIMEOUT (a duration; default none), XNUM_REPORTS_WAIT (a
// duration from 1s to 24h; default the settler's), and XNUM_BUY_LEASE,
// XNUM_BUY_SWEEP_EVERY and XNUM_BUY_SWEEP_IDLE (durations from 1s to 1h;
// default the worker's).
func LoadBuy(lookup Lookup) (Buy, error) {
	b := Buy{Role: get(lookup, BuyRole), QPS: DefaultBuyQPS, Consumer: !OnFC(lookup)}
	switch b.Role {
	case BuyRoleIntake, BuyRoleWorker, BuyRoleAll:
	case "":
		if OnFC(lookup) {
			// An intake that also buys would drain the queue from the
			// function the internet reaches, on its short timeout.
			return Buy{}, bad(BuyRole, "is required on FC: intake for the function with the HTTP trigger, worker for the one that drains the queue and is woken up")
		}
		b.Role = BuyRoleAll
	default:
		return Buy{}, bad(BuyRole, "must be intake, worker or all, not "+strconv.Quote(b.Role))
	}
	if s := get(lookup, AliyunBuyQPS); s != "" {
		q, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(q) || q < 0 || q > 1000 {
			return Buy{}, bad(AliyunBuyQPS, "must be a number of calls per second from 0 (no limit) to 1000, not "+strconv.Quote(s))
		}
		b.QPS = q
	}
	if s := get(lookup, BuyConsumer); s != "" {
		c, err := strconv.ParseBool(s)
		if err != nil {
			return Buy{}, bad(BuyConsumer, "must be true or false, not "+strconv.Quote(s))
		}
		if c && b.Role == BuyRoleIntake {
			return Buy{}, bad(BuyConsumer, "is true but "+BuyRole+" is intake, which never buys")
		}
		b.Consumer = c
	}
	if b.Role == BuyRoleIntake {
		b.Consumer = false
	}
	var err error
	if b.EventTimeout, err = duration(lookup, EventTimeout); err != nil {
		return Buy{}, err
	}
	if b.ReportsWait, err = durationIn(lookup, ReportsWait, time.Second, 24*time.Hour, "1s and 24h such as 10m"); err != nil {
		return Buy{}, err
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{{BuyLease, &b.Lease}, {BuySweepEvery, &b.SweepEvery}, {BuySweepIdle, &b.SweepIdle}} {
		if *d.v, err = durationIn(lookup, d.name, time.Second, time.Hour, "1s and 1h such as 45s"); err != nil {
			return Buy{}, err
		}
	}
	return b, nil
}

// LoadLevel reads XNUM_LOG_LEVEL: debug, info (default), warn or error. On
// Lambda, AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR or FATAL)
// wins when set: Lambda drops the lines under it anyway, so writing them
// would only cost time.
func LoadLevel(lookup Lookup) (slog.Level, error) {
	if s := get(lookup, LambdaLogLevel); s != "" {
		switch strings.ToUpper(s) {
		case "TRACE":
			return slog.LevelDebug, nil
		case "FATAL":
			return slog.LevelError, nil
		}
		l, err := logging.ParseLevel(s)
		if err != nil {
			return 0, bad(LambdaLogLevel, "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL, not "+strconv.Quote(s))
		}
		return l, nil
	}
	s := get(lookup, LogLevel)
	l, err := logging.ParseLevel(s)
	if err != nil {
		return 0, bad(LogLevel, "must be debug, info, warn or error, not "+strconv.Quote(s))
	}
	return l, nil
}

// LoadMetricsAddr reads XNUM_METRICS_ADDR: host:port (":9090" listens on
// every interface), or "" when unset.
func LoadMetricsAddr(lookup Lookup) (string, error) {
	s := get(lookup, MetricsAddr)
	if s == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 0 || p > 65535 || strings.ContainsAny(host, "/ ") {
		return "", bad(MetricsAddr, "must be host:port, such as 127.0.0.1:9090 or :9090, not "+strconv.Quote(s))
	}
	return s, nil
}

// keyPair checks an AccessKey pair: both present, no blanks or control
// characters (a pasted newline signs every request wrong).
func keyPair(idName, id, secretName, sec string) error {
	if id == "" {
		return bad(idName, "is required")
	}
	if len(id) > 128 || !printable(id) {
		return bad(idName, "must be at most 128 printable characters without spaces")
	}
	return secret(secretName, sec, true, 1024)
}

// secret checks a secret without ever showing it.
func secret(name, v string, required bool, max int) error {
	switch {
	case v == "" && required:
		return bad(name, "is required")
	case len(v) > max:
		return bad(name, fmt.Sprintf("is longer than %d characters", max))
	case !printable(v):
		return bad(name, "contains spaces or control characters (its value is not shown)")
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

func region(name, v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return bad(name, "must be a region id such as cn-hangzhou, not "+strconv.Quote(v))
		}
	}
	return nil
}

// endpoint reads an optional URL override: http or https, a host, nothing
// else (no credentials, path or query).
func endpoint(lookup Lookup, name string) (string, error) {
	s := get(lookup, name)
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", bad(name, "must be an http:// or https:// URL with a host, such as http://127.0.0.1:9100")
	}
	if u.User != nil {
		return "", bad(name, "must not carry credentials")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", bad(name, "must be only a scheme and a host, without a path or query")
	}
	return u.Scheme + "://" + u.Host, nil
}

// duration reads an optional Go duration (5s, 1m30s) between a millisecond
// and ten minutes; unset is 0, the client's default.
func duration(lookup Lookup, name string) (time.Duration, error) {
	return durationIn(lookup, name, time.Millisecond, 10*time.Minute, "1ms and 10m such as 5s")
}

// durationIn reads an optional duration in [lo, hi]; unset is 0. between
// says the bounds in the error.
func durationIn(lookup Lookup, name string, lo, hi time.Duration, between string) (time.Duration, error) {
	s := get(lookup, name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, bad(name, "must be a duration between "+between+", not "+strconv.Quote(s))
	}
	return d, nil
}

// integer reads an optional whole number in [min, max]; unset is def.
func integer(lookup Lookup, name string, min, max, def int) (int, error) {
	s := get(lookup, name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, bad(name, fmt.Sprintf("must be a whole number from %d to %d, not %q", min, max, s))
	}
	return n, nil
}
