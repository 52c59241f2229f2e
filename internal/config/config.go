// Package config reads the configuration every function shares from the
// environment, checked at start: the log level and NATS. What belongs to one
// part is read by that part (aliyun.ConfigFromEnv, volcengine.ConfigFromEnv,
// buy.ConfigFromEnv), so a function links only what it uses. Each loader
// answers one *envvar.Error naming the variable that is missing or wrong, and
// never prints a secret's value.
package config

import (
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/logging"
)

// The variables read.
const (
	NATSURL   = "NATS_URL"
	NATSCreds = "NATS_CREDS" // a .creds file: the user's JWT and nkey seed
	NATSNKey  = "NATS_NKEY"  // an nkey seed file, for a server that lists nkey users
	NATSCA    = "NATS_CA"    // PEM file of the CAs that sign the server's certificate
	NATSCert  = "NATS_CERT"  // PEM file of a client certificate, for mutual TLS
	NATSKey   = "NATS_KEY"   // its private key

	NATSReplicas = "XNUM_NATS_REPLICAS"

	LogLevel = "XNUM_LOG_LEVEL"
	// LambdaLogLevel is set by Lambda when the function's logging config
	// filters application logs by level (advanced logging controls).
	LambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"
	// FCFunctionName is set by FC in every function instance: a process
	// that sees it runs on FC.
	FCFunctionName = "FC_FUNCTION_NAME"
	// MetricsAddr is where a long-lived process serves GET /metrics,
	// /healthz and /readyz; unset: nowhere.
	MetricsAddr = "XNUM_METRICS_ADDR"
)

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

// LoadNATS reads NATS_URL and how to connect to it: NATS_CREDS or
// NATS_NKEY (who the functions are), NATS_CA, NATS_CERT and NATS_KEY (TLS);
// and XNUM_NATS_REPLICAS. All are optional, but each file must be readable,
// and none goes without a URL.
func LoadNATS(lookup envvar.Lookup) (NATS, error) {
	n := NATS{
		URL:   envvar.Get(lookup, NATSURL),
		Creds: envvar.Get(lookup, NATSCreds),
		NKey:  envvar.Get(lookup, NATSNKey),
		CA:    envvar.Get(lookup, NATSCA),
		Cert:  envvar.Get(lookup, NATSCert),
		Key:   envvar.Get(lookup, NATSKey),
		// Replicas: 1 unless XNUM_NATS_REPLICAS says otherwise, below.
		Replicas: 1,
	}
	if n.URL != "" {
		for _, s := range strings.Split(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || u.Host == "" {
				return NATS{}, envvar.Bad(NATSURL, "must be nats://host:port (or a comma-separated list of such URLs)")
			}
			switch u.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				return NATS{}, envvar.Bad(NATSURL, "must use the nats, tls, ws or wss scheme, not "+strconv.Quote(u.Scheme))
			}
		}
	}
	files := []struct{ name, path string }{{NATSCreds, n.Creds}, {NATSNKey, n.NKey}, {NATSCA, n.CA}, {NATSCert, n.Cert}, {NATSKey, n.Key}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if n.URL == "" {
			return NATS{}, envvar.Bad(f.name, "is set but "+NATSURL+" is not")
		}
		// The error names the file, never its content.
		b, err := os.ReadFile(f.path)
		if err != nil {
			return NATS{}, envvar.Bad(f.name, "must name a readable file: "+err.Error())
		}
		if len(b) == 0 {
			return NATS{}, envvar.Bad(f.name, "names an empty file: "+f.path)
		}
	}
	switch {
	case n.Creds != "" && n.NKey != "":
		return NATS{}, envvar.Bad(NATSNKey, "is set with "+NATSCreds+"; a connection signs in with one of them")
	case (n.Cert == "") != (n.Key == ""):
		return NATS{}, envvar.Bad(NATSKey, "and "+NATSCert+" go together: a client certificate and its key")
	}
	if n.NKey != "" {
		if err := checkNKeySeed(n.NKey); err != nil {
			return NATS{}, envvar.Bad(NATSNKey, "must name a file holding an nkey seed (its content is not shown)")
		}
	}
	if s := envvar.Get(lookup, NATSReplicas); s != "" {
		// An even count survives no more lost servers than one fewer.
		switch s {
		case "1", "3", "5":
			n.Replicas, _ = strconv.Atoi(s)
		default:
			return NATS{}, envvar.Bad(NATSReplicas, "must be 1, 3 or 5 (servers keeping each JetStream object), not "+strconv.Quote(s))
		}
	}
	return n, nil
}

// LoadLevel reads XNUM_LOG_LEVEL: debug, info (default), warn or error. On
// Lambda, AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR or FATAL)
// wins when set: Lambda drops the lines under it anyway, so writing them
// would only cost time.
func LoadLevel(lookup envvar.Lookup) (slog.Level, error) {
	if s := envvar.Get(lookup, LambdaLogLevel); s != "" {
		switch strings.ToUpper(s) {
		case "TRACE":
			return slog.LevelDebug, nil
		case "FATAL":
			return slog.LevelError, nil
		}
		l, err := logging.ParseLevel(s)
		if err != nil {
			return 0, envvar.Bad(LambdaLogLevel, "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL, not "+strconv.Quote(s))
		}
		return l, nil
	}
	s := envvar.Get(lookup, LogLevel)
	l, err := logging.ParseLevel(s)
	if err != nil {
		return 0, envvar.Bad(LogLevel, "must be debug, info, warn or error, not "+strconv.Quote(s))
	}
	return l, nil
}

// LoadMetricsAddr reads XNUM_METRICS_ADDR: host:port (":9090" listens on
// every interface), or "" when unset.
func LoadMetricsAddr(lookup envvar.Lookup) (string, error) {
	s := envvar.Get(lookup, MetricsAddr)
	if s == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 0 || p > 65535 || strings.ContainsAny(host, "/ ") {
		return "", envvar.Bad(MetricsAddr, "must be host:port, such as 127.0.0.1:9090 or :9090, not "+strconv.Quote(s))
	}
	return s, nil
}
