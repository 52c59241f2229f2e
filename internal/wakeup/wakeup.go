// Package wakeup starts the buy worker on FC as soon as the intake has
// accepted an order, instead of at the worker's next timer drain (up to a
// minute later): the intake asks FC to run the worker function
// asynchronously, through FC 3.0's InvokeFunction.
//
// # What a wake-up carries, and why
//
// The orders themselves (Payload: the order.requested data the intake
// queued), not a request to drain the queue. The worker takes each order
// through the same ledger as every other delivery (worker.HandleOrder), so
// the timer drain meeting its queued message later is a replay. A drain
// would start no order at once: worker.Drain first waits up to a second for
// max-deliveries advisories, and ends only after a second of empty queue, so
// a drain for one order takes three seconds, of which one before the buy.
//
// # Coalescing
//
// One wake-up is in flight per intake process at a time (Waker). The orders
// accepted while it is in flight ride together in the next one, up to
// MaxOrders, so a burst costs one invocation per round trip to FC, not one
// per order; an order accepted when nothing is in flight goes at once, alone.
// Each POST /orders returns only once its order was handed to FC (or the
// hand-over failed): FC may freeze an instance as soon as it has answered,
// so nothing can be left to a goroutine after the answer. A failed wake-up
// never fails an order: it is logged once, with its reason and its orders,
// and the timer drain takes them.
//
// # Signing
//
// Calls are signed ACS3-HMAC-SHA256 here, after the published V3 example,
// with the function role's credentials: the invocation's (FC puts them in
// the x-fc-* headers the runtime moves into the context), else
// ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN, which FC also sets.
// github.com/alibabacloud-go/darabonba-openapi/v2 has a signer, and tests
// hold this one to it; it is not used here because with it come its
// transport, retry loop and credential chain (tea, tea-utils,
// credentials-go, the gmsm crypto module) — megabytes and init time in a
// function binary for one signed POST, no context on its plain calls, and a
// nonce that formats the calling goroutine's stack — where net/http and
// sixty lines do.
package wakeup

import (
	"bytes"
	"encoding/json"
)

// Type marks a wake-up payload.
const Type = "xnum.wakeup"

// Payload is the body of a wake-up invocation: the orders an intake
// accepted, each as the order.requested data it queued.
type Payload struct {
	Type   string            `json:"type"`
	Orders []json.RawMessage `json:"orders"`
}

// Decode reads body as a wake-up payload. It reports false for anything
// else, such as an order or one of FC's trigger events.
func Decode(body []byte) (Payload, bool) {
	if !bytes.Contains(body, []byte(Type)) {
		return Payload{}, false
	}
	var p Payload
	if json.Unmarshal(body, &p) != nil || p.Type != Type {
		return Payload{}, false
	}
	return p, true
}
