package config

import (
	"strconv"
	"strings"

	"github.com/xnum-dev/xnum/internal/envvar"
)

// The variables of the SDK debug guard.
const (
	// Debug is read by the Alibaba Cloud SDK itself, at start: a
	// comma-separated list of what to print; "sdk" prints every request and
	// answer to stdout. The Volcengine SDKs read no such variable (their log
	// level is set in code, off).
	Debug = "DEBUG"
	// AllowSDKDebug=1 lets a process start with DEBUG=sdk anyway.
	AllowSDKDebug = "XNUM_ALLOW_SDK_DEBUG"
)

// CheckSDKDebug refuses a DEBUG that makes the Alibaba Cloud SDK print its
// requests: the signed URL it prints carries the SecurityToken and the
// Signature, and stdout is where FC and Lambda collect logs. XNUM_ALLOW_SDK_DEBUG=1
// runs so on purpose.
func CheckSDKDebug(lookup envvar.Lookup) error {
	allow := false
	if s := envvar.Get(lookup, AllowSDKDebug); s != "" {
		var err error
		if allow, err = strconv.ParseBool(s); err != nil {
			return envvar.Bad(AllowSDKDebug, "must be 1 or 0, not "+strconv.Quote(s))
		}
	}
	v, _ := lookup(Debug)
	for _, part := range strings.Split(v, ",") {
		// The SDK matches the part exactly; a blank around it is refused too.
		if strings.TrimSpace(part) == "sdk" && !allow {
			return envvar.Bad(Debug, "contains sdk, which makes the Alibaba Cloud SDK print every request it sends, "+
				"SecurityToken and Signature included, to stdout, where the logs go; unset it, or set "+
				AllowSDKDebug+"=1 to print them on purpose")
		}
	}
	return nil
}
