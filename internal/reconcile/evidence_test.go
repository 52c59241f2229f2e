package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// TestEvidenceRules: each rule a proof must pass to settle an attempt in
// doubt, and the rule that refuses each wrong proof.
func TestEvidenceRules(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	attempt := func(seq int, at time.Time) *ledger.Attempt {
		return &ledger.Attempt{Seq: seq, Owner: "w", StartedAt: at, AnswerBy: at.Add(20 * time.Second), RecordBy: at.Add(140 * time.Second)}
	}
	order := func(id, pool, city string, spec provider.SpecID, prefix string) *ledger.Order {
		return &ledger.Order{OrderID: id, Status: ledger.StatusInDoubt, Quantity: 2,
			Request: events.OrderRequested{OrderID: id, PoolKey: pool, City: city, SpecID: spec, Quantity: 2, Prefix: prefix},
			Attempt: attempt(1, start)}
	}
	doubt := order("o", "FC1", "杭州", provider.SpecCarrier, "13")
	good := Proof{SecretNo: "13000000001", PoolKey: "FC1", City: "杭州", BoughtAt: start.Add(2 * time.Second)}

	holder := order("holder", "FC1", "杭州", provider.SpecCarrier, "")
	holder.Status, holder.Attempt = ledger.StatusCompleted, nil
	holder.Numbers = []ledger.Number{{SecretNo: "13000000002"}}
	excessHolder := order("excess-holder", "FC1", "杭州", provider.SpecCarrier, "")
	excessHolder.Status, excessHolder.Attempt = ledger.StatusCompleted, nil
	excessHolder.Excess = []ledger.Number{{SecretNo: "13000000003"}}
	// A live order whose attempt is still in flight, buying the same kind.
	inFlight := order("in-flight", "FC1", "杭州", provider.SpecCarrier, "")
	inFlight.Status, inFlight.Attempt = ledger.StatusProcessing, attempt(3, start.Add(10*time.Second))
	// Attempts that cannot have bought 13…: another pool, another type.
	otherPool := order("other-pool", "FC9", "杭州", provider.SpecCarrier, "")
	otherSpec := order("other-spec", "FC1", "杭州", provider.SpecVirtual, "")
	all := []*ledger.Order{doubt, holder, excessHolder, otherPool, otherSpec}

	mod := func(f func(*Proof)) Proof { p := good; f(&p); return p }
	tests := []struct {
		name  string
		p     Proof
		all   []*ledger.Order
		kind  provider.Kind // "" = accepted
		words string
	}{
		{"fits", good, all, "", ""},
		{"bought at the last moment of the window", mod(func(p *Proof) { p.BoughtAt = start.Add(24 * time.Second) }), all, "", ""},
		{"no number", mod(func(p *Proof) { p.SecretNo = "" }), all, provider.ErrInvalidParameter, "names no number"},
		{"another pool", mod(func(p *Proof) { p.PoolKey = "FC2" }), all, provider.ErrInvalidParameter, "pool FC2"},
		{"a city written otherwise", mod(func(p *Proof) { p.City = "杭州市" }), all, provider.ErrInvalidParameter, "city 杭州市"},
		{"another city", mod(func(p *Proof) { p.City = "北京" }), all, provider.ErrInvalidParameter, "city 北京"},
		{"another number type", mod(func(p *Proof) { p.SecretNo = "17000000001" }), all, provider.ErrInvalidParameter, "number type"},
		{"another prefix", mod(func(p *Proof) { p.SecretNo = "18000000001" }), all, provider.ErrInvalidParameter, "prefix 13"},
		{"no time", mod(func(p *Proof) { p.BoughtAt = time.Time{} }), all, provider.ErrInvalidParameter, "no purchase time"},
		{"bought before the attempt", mod(func(p *Proof) { p.BoughtAt = start.Add(-time.Minute) }), all, provider.ErrInvalidParameter, "before attempt 1"},
		{"bought after the answer could come", mod(func(p *Proof) { p.BoughtAt = start.Add(time.Minute) }), all, provider.ErrInvalidParameter, "after attempt 1"},
		{"held by another order", mod(func(p *Proof) { p.SecretNo = "13000000002" }), all, provider.ErrConflict, "belongs to order holder"},
		{"excess of another order", mod(func(p *Proof) { p.SecretNo = "13000000003" }), all, provider.ErrConflict, "belongs to order excess-holder"},
		{"another attempt in flight could have bought it", mod(func(p *Proof) { p.BoughtAt = start.Add(15 * time.Second) }),
			append(all, inFlight), provider.ErrConflict, "attempt 3 of order in-flight"},
		{"the other attempt began after the purchase", good, append(all, inFlight), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(doubt, tt.p, tt.all, 5*time.Second)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if provider.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("got %v, want %s saying %q", err, tt.kind, tt.words)
			}
		})
	}

	// 全国通用 names no city of its own: a 95 number's city is not checked.
	universal := order("u", "FC1", provider.CityUniversal, provider.Spec95, "")
	if err := check(universal, Proof{SecretNo: "9501300000001", City: "北京", BoughtAt: start.Add(time.Second)}, nil, time.Second); err != nil {
		t.Fatalf("95 number: %v", err)
	}
}
