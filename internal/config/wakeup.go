package config

import (
	"strconv"

	"github.com/xnum-dev/xnum/internal/envvar"
)

// The variables of the worker's wake-up on FC.
const (
	BuyWorkerFunction = "XNUM_BUY_WORKER_FUNCTION"
	FCEndpoint        = "XNUM_FC_ENDPOINT"
	FCAccountID       = "FC_ACCOUNT_ID" // set by FC in every function instance
	FCRegion          = "FC_REGION"     // set by FC in every function instance
)

// Wakeup is where the intake wakes the buy worker up on FC.
type Wakeup struct {
	// Function is the worker's function name; empty: no wake-up, the
	// worker's timer drain alone takes the orders.
	Function string
	// Endpoint is FC's API endpoint.
	Endpoint string
}

// Enabled reports whether the intake wakes the worker up.
func (w Wakeup) Enabled() bool { return w.Function != "" }

// fcFunctionName is FC 3.0's rule for a function name: a letter or _, then
// up to 127 letters, digits, _ or -. A loop, not a regexp: this package is
// in every function, and a regexp compiled at init is part of every cold
// start.
func fcFunctionName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// LoadWakeup reads XNUM_BUY_WORKER_FUNCTION (unset: no wake-up) and
// XNUM_FC_ENDPOINT, by default https://{FC_ACCOUNT_ID}.{FC_REGION}.fc.aliyuncs.com
// from the variables FC sets.
func LoadWakeup(lookup envvar.Lookup) (Wakeup, error) {
	w := Wakeup{Function: envvar.Get(lookup, BuyWorkerFunction)}
	if w.Function == "" {
		return Wakeup{}, nil
	}
	if !fcFunctionName(w.Function) {
		return Wakeup{}, envvar.Bad(BuyWorkerFunction, "must be an FC function name (a letter or _, then up to 127 letters, digits, _ or -), not "+strconv.Quote(w.Function))
	}
	if e := envvar.Get(lookup, FCEndpoint); e != "" {
		scheme, host, why := envvar.SchemeHost(e)
		if why != "" {
			return Wakeup{}, envvar.Bad(FCEndpoint, why)
		}
		w.Endpoint = scheme + "://" + host
		return w, nil
	}
	account, reg := envvar.Get(lookup, FCAccountID), envvar.Get(lookup, FCRegion)
	if account == "" || reg == "" {
		return Wakeup{}, envvar.Bad(FCEndpoint, "is required outside FC (FC_ACCOUNT_ID and FC_REGION, which FC sets, are not)")
	}
	for _, r := range account {
		if r < '0' || r > '9' {
			return Wakeup{}, envvar.Bad(FCAccountID, "must be an account id of digits, not "+strconv.Quote(account))
		}
	}
	if why := envvar.Region(reg, "cn-hangzhou"); why != "" {
		return Wakeup{}, envvar.Bad(FCRegion, why)
	}
	w.Endpoint = "https://" + account + "." + reg + ".fc.aliyuncs.com"
	return w, nil
}
