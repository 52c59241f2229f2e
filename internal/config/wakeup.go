package config

import (
	"regexp"
	"strconv"
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

// fcFunctionName is FC 3.0's rule for a function name.
var fcFunctionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)

// LoadWakeup reads XNUM_BUY_WORKER_FUNCTION (unset: no wake-up) and
// XNUM_FC_ENDPOINT, by default https://{FC_ACCOUNT_ID}.{FC_REGION}.fc.aliyuncs.com
// from the variables FC sets.
func LoadWakeup(lookup Lookup) (Wakeup, error) {
	w := Wakeup{Function: get(lookup, BuyWorkerFunction)}
	if w.Function == "" {
		return Wakeup{}, nil
	}
	if !fcFunctionName.MatchString(w.Function) {
		return Wakeup{}, bad(BuyWorkerFunction, "must be an FC function name (a letter or _, then up to 127 letters, digits, _ or -), not "+strconv.Quote(w.Function))
	}
	var err error
	if w.Endpoint, err = endpoint(lookup, FCEndpoint); err != nil || w.Endpoint != "" {
		return w, err
	}
	account, reg := get(lookup, FCAccountID), get(lookup, FCRegion)
	if account == "" || reg == "" {
		return Wakeup{}, bad(FCEndpoint, "is required outside FC (FC_ACCOUNT_ID and FC_REGION, which FC sets, are not)")
	}
	for _, r := range account {
		if r < '0' || r > '9' {
			return Wakeup{}, bad(FCAccountID, "must be an account id of digits, not "+strconv.Quote(account))
		}
	}
	if err := region(FCRegion, reg); err != nil {
		return Wakeup{}, err
	}
	w.Endpoint = "https://" + account + "." + reg + ".fc.aliyuncs.com"
	return w, nil
}
