package reconcile

import (
	"fmt"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Proof is evidence that a number was bought into a pool at a time: a
// QuerySecretNoDetail answer, or a NumberManagementReport message confirmed
// by one.
type Proof struct {
	SecretNo string
	PoolKey  string // empty when the evidence does not name the pool
	City     string // empty when the evidence does not name the city
	BoughtAt time.Time
	// Source says where the proof comes from, e.g. "QuerySecretNoDetail
	// (request 8F1A…)".
	Source string
}

func proofFromDetail(d provider.NumberDetail) Proof {
	return Proof{SecretNo: d.SecretNo, PoolKey: d.PoolKey, City: d.City, BoughtAt: d.PurchaseTime,
		Source: "QuerySecretNoDetail (request " + d.RequestID + ")"}
}

// window is when a number bought by attempt a may have been bought: from
// when it began (less slack, for clocks and the provider's one-second
// times) to when its answer could last have come (plus slack).
func window(a *ledger.Attempt, slack time.Duration) (from, to time.Time) {
	return a.StartedAt.Add(-slack), a.AnsweredBy().Add(slack)
}

// fits tells, with the reason when not, whether a number of proof p is of
// the kind o's request buys: the same pool, the same city (exactly: the
// request names the city Dyplsapi sells in), the same number type and the
// request's prefix.
func fits(o *ledger.Order, p Proof) error {
	req := o.Request
	switch {
	case p.PoolKey != "" && p.PoolKey != req.PoolKey:
		return fmt.Errorf("number %s is in pool %s, the order buys into %s", p.SecretNo, p.PoolKey, req.PoolKey)
	case p.City != "" && req.City != provider.CityUniversal && p.City != req.City:
		return fmt.Errorf("number %s is of city %s, the order buys in %s", p.SecretNo, p.City, req.City)
	case provider.SpecOfNumber(p.SecretNo) != req.SpecID:
		return fmt.Errorf("number %s is not of the order's number type (specId %d)", p.SecretNo, req.SpecID)
	case !strings.HasPrefix(p.SecretNo, req.Prefix):
		return fmt.Errorf("number %s does not start with the order's prefix %s", p.SecretNo, req.Prefix)
	}
	return nil
}

// check tests proof p against the attempt in doubt of o and every order of
// all: the number is of the kind o buys, was bought within its attempt's
// window, is held by no order, and no other attempt without a result (in
// doubt, or still in flight) could have bought it instead. It returns nil
// or an error saying which rule refused it.
func check(o *ledger.Order, p Proof, all []*ledger.Order, slack time.Duration) error {
	a := o.Attempt
	if p.SecretNo == "" {
		return provider.Invalid("secretNo", "the proof names no number")
	}
	if err := fits(o, p); err != nil {
		return provider.Invalid("secretNo", err.Error())
	}
	from, to := window(a, slack)
	switch {
	case p.BoughtAt.IsZero():
		return provider.Invalid("boughtAt", "the proof has no purchase time")
	case p.BoughtAt.Before(from):
		return provider.Invalid("boughtAt", fmt.Sprintf("number %s was bought at %s, before attempt %d began at %s",
			p.SecretNo, stamp(p.BoughtAt), a.Seq, stamp(a.StartedAt)))
	case p.BoughtAt.After(to):
		return provider.Invalid("boughtAt", fmt.Sprintf("number %s was bought at %s, after attempt %d could last have been answered (%s)",
			p.SecretNo, stamp(p.BoughtAt), a.Seq, stamp(a.AnsweredBy())))
	}
	for _, other := range all {
		if other.Holds(p.SecretNo) {
			return &provider.Error{Kind: provider.ErrConflict, Field: "secretNo",
				Message: fmt.Sprintf("number %s already belongs to order %s", p.SecretNo, other.OrderID)}
		}
		if other.OrderID == o.OrderID || other.Attempt == nil || fits(other, p) != nil {
			continue
		}
		if from, to := window(other.Attempt, slack); !p.BoughtAt.Before(from) && !p.BoughtAt.After(to) {
			return &provider.Error{Kind: provider.ErrConflict, Field: "secretNo", Message: fmt.Sprintf(
				"number %s could as well be what attempt %d of order %s (%s) bought: the evidence does not tell them apart",
				p.SecretNo, other.Attempt.Seq, other.OrderID, other.Status)}
		}
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
