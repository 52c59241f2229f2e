package dypls

import "time"

// maxNonces bounds the replay store. A request is remembered until its
// Timestamp leaves the skew window, so the store holds at most the requests
// of the last 2×MaxSkew; past this bound new requests are refused (503)
// rather than remembered less.
const maxNonces = 1 << 20

type nonceResult int

const (
	nonceFresh nonceResult = iota
	nonceUsed
	nonceFull
)

// nonceStore remembers the SignatureNonces of accepted requests until their
// Timestamp could no longer pass the skew check, after which a replay is
// refused as expired anyway. Its methods expect the Server's lock held.
type nonceStore struct {
	until     map[string]time.Time
	limit     int
	nextSweep int
}

func newNonceStore(limit int) *nonceStore {
	return &nonceStore{until: map[string]time.Time{}, limit: limit, nextSweep: min(limit, 1024)}
}

// use records key, valid until until, unless it is already recorded.
func (n *nonceStore) use(key string, until, now time.Time) nonceResult {
	if t, ok := n.until[key]; ok && now.Before(t) {
		return nonceUsed
	}
	if len(n.until) >= n.nextSweep {
		n.sweep(now)
	}
	if len(n.until) >= n.limit {
		return nonceFull
	}
	n.until[key] = until
	return nonceFresh
}

// sweep forgets expired nonces. It runs when the store has doubled since
// the last sweep, so its cost is amortised over the inserts; a full store is
// swept on every insert until room frees up.
func (n *nonceStore) sweep(now time.Time) {
	for k, t := range n.until {
		if !now.Before(t) {
			delete(n.until, k)
		}
	}
	n.nextSweep = min(n.limit, max(1024, 2*len(n.until)))
}

func (n *nonceStore) len() int { return len(n.until) }
