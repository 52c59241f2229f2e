package config

import (
	"net"
	"strconv"

	"github.com/xnum-dev/xnum/internal/envvar"
)

// Variables that say where the process runs and where it listens.
const (
	FCCustomListenPort = "FC_CUSTOM_LISTEN_PORT" // the port FC sends requests to
	FCServerPort       = "FC_SERVER_PORT"        // the same, in older runtimes
	Port               = "PORT"
	// HTTPAddr is where the HTTP server listens, host:port, on purpose.
	HTTPAddr = "XNUM_HTTP_ADDR"
)

// defaultPort is the port the HTTP server listens on when nothing names one:
// FC's default for a custom runtime.
const defaultPort = "9000"

// OnFC reports whether Function Compute runs this process: FC_FUNCTION_NAME,
// FC_REGION and FC_ACCOUNT_ID are all set. FC sets them in every function
// instance (its documented system variables) and refuses user variables
// named FC_*, so a deployment cannot set them by mistake and they are absent
// everywhere else. Only then is FC's contract
// honoured (its control paths, x-fc-* headers and lifecycle hooks): behind FC
// only FC can send them, anywhere else anyone could.
func OnFC(lookup envvar.Lookup) bool {
	for _, name := range []string{FCFunctionName, FCRegion, FCAccountID} {
		if envvar.Get(lookup, name) == "" {
			return false
		}
	}
	return true
}

// LoadHTTPAddr reads where the HTTP server listens: XNUM_HTTP_ADDR when set;
// else the port FC_CUSTOM_LISTEN_PORT, FC_SERVER_PORT or PORT names (9000
// when none does) on 0.0.0.0 on FC, which reaches the instance from outside,
// and on 127.0.0.1 elsewhere, so that a function run by hand serves no one
// but its own machine until XNUM_HTTP_ADDR opens it.
func LoadHTTPAddr(lookup envvar.Lookup) (string, error) {
	if s := envvar.Get(lookup, HTTPAddr); s != "" {
		host, port, err := net.SplitHostPort(s)
		if err != nil || !validPort(port) {
			return "", envvar.Bad(HTTPAddr, "must be host:port such as 0.0.0.0:9000 or 127.0.0.1:8080, not "+strconv.Quote(s))
		}
		return net.JoinHostPort(host, port), nil
	}
	port := defaultPort
	for _, name := range []string{FCCustomListenPort, FCServerPort, Port} {
		if v := envvar.Get(lookup, name); v != "" {
			if !validPort(v) {
				return "", envvar.Bad(name, "must be a port number, not "+strconv.Quote(v))
			}
			port = v
			break
		}
	}
	host := "127.0.0.1"
	if OnFC(lookup) {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, port), nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}
