package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*ledger.Ledger, jetstream.KeyValue, *clock) {
	t.Helper()
	s := embednats.RunTest(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	q, err := queue.Setup(ctx(t), js)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	return ledger.New(q.Ledger, ledger.WithClock(c.Now)), q.Ledger, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func order(id string, qty int) events.OrderRequested {
	return events.OrderRequested{OrderID: id, PoolKey: "FC1", City: "杭州", SpecID: 1, Quantity: qty}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestCreateOrGet(t *testing.T) {
	l, _, _ := setup(t)
	c := ctx(t)
	o, created, err := l.CreateOrGet(c, order("a", 2))
	if err != nil || !created || o.Status != ledger.StatusAccepted || o.Quantity != 2 || o.Revision == 0 {
		t.Fatalf("create: %+v %v %v", o, created, err)
	}
	again, created, err := l.CreateOrGet(c, order("a", 2))
	if err != nil || created || again.Revision != o.Revision {
		t.Fatalf("same payload again: %+v %v %v", again, created, err)
	}
	other, created, err := l.CreateOrGet(c, order("a", 3))
	if !errors.Is(err, ledger.ErrPayloadConflict) || created || other.Quantity != 2 || provider.KindOf(err) != provider.ErrConflict {
		t.Fatalf("other payload: %+v %v %v", other, created, err)
	}
	if _, _, err := l.CreateOrGet(c, order("a", 0)); provider.KindOf(err) != provider.ErrInvalidParameter {
		t.Fatalf("invalid order: %v", err)
	}
	got := must[*ledger.Order](t)(l.Get(c, "a"))
	if got.Quantity != 2 || got.RequestHash != ledger.Hash(order("a", 2)) {
		t.Fatalf("stored %+v", got)
	}
	for _, id := range []string{"nope", "a.b", "", "x y"} {
		if _, err := l.Get(c, id); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
	}
}

// TestCreateRace: many callers with the same id and two payloads; exactly
// one creates it, every other caller either agrees or sees a conflict.
func TestCreateRace(t *testing.T) {
	l, _, _ := setup(t)
	c := ctx(t)
	const n = 20
	var created, same, conflict atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, ok, err := l.CreateOrGet(c, order("race", 1+i%2))
			switch {
			case ok:
				created.Add(1)
			case errors.Is(err, ledger.ErrPayloadConflict):
				conflict.Add(1)
			case err == nil && o != nil:
				same.Add(1)
			default:
				t.Errorf("CreateOrGet: %v", err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 || created.Load()+same.Load()+conflict.Load() != n || conflict.Load() == 0 {
		t.Fatalf("created %d, same %d, conflict %d", created.Load(), same.Load(), conflict.Load())
	}
	t.Logf("%d racing creates: 1 created, %d same payload, %d conflicts", n, same.Load(), conflict.Load())
}

func TestClaimAndTakeOver(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("b", 2))
	a := must[*ledger.Order](t)(l.Claim(c, o, "A", time.Minute))
	if a.Status != ledger.StatusProcessing || !a.ClaimedBy("A", clk.Now()) {
		t.Fatalf("claimed %+v", a)
	}
	// B reads the order and finds A's live lease.
	seen := must[*ledger.Order](t)(l.Get(c, "b"))
	var ce *ledger.ClaimedError
	if _, err := l.Claim(c, seen, "B", time.Minute); !errors.As(err, &ce) || ce.Owner != "A" {
		t.Fatalf("claim over a live lease: %v", err)
	}
	// A's lease lapses; B takes over by compare-and-set.
	clk.Advance(2 * time.Minute)
	b := must[*ledger.Order](t)(l.Claim(c, seen, "B", time.Minute))
	if !b.ClaimedBy("B", clk.Now()) {
		t.Fatalf("take-over %+v", b)
	}
	// A still holds its old copy: every write of it is stale now.
	if _, err := l.BeginAttempt(c, a, "A", time.Minute); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("stale BeginAttempt: %v", err)
	}
	if _, err := l.Renew(c, a, "A", time.Minute); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("stale Renew: %v", err)
	}
	// And on the fresh copy A is not the owner.
	if _, err := l.BeginAttempt(c, b, "A", time.Minute); !isState(err) {
		t.Fatalf("BeginAttempt by a non-owner: %v", err)
	}
	r := must[*ledger.Order](t)(l.Renew(c, b, "B", 5*time.Minute))
	if !r.Claim.LeaseUntil.Equal(clk.Now().Add(5 * time.Minute)) {
		t.Fatalf("renewed lease %v", r.Claim.LeaseUntil)
	}
	rel := must[*ledger.Order](t)(l.Release(c, r, "B"))
	if rel.Status != ledger.StatusAccepted || rel.Claim != nil {
		t.Fatalf("released %+v", rel)
	}
}

func isState(err error) bool {
	var se *ledger.StateError
	return errors.As(err, &se) && provider.KindOf(err) == provider.ErrConflict
}

// TestOneAttemptPerRevision: workers that read the same revision race to
// record an attempt; exactly one wins, so only one may call BuySecretNo.
func TestOneAttemptPerRevision(t *testing.T) {
	l, _, _ := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("c", 5))
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute))
	var wins, stale atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.BeginAttempt(c, o, "W", time.Minute)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ledger.ErrStale):
				stale.Add(1)
			default:
				t.Errorf("BeginAttempt: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || stale.Load() != 15 {
		t.Fatalf("%d won, %d stale; want 1 and 15", wins.Load(), stale.Load())
	}
}

func TestBuyLifecycle(t *testing.T) {
	l, kv, _ := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("d", 2))
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", time.Minute))
	if o.Attempt == nil || o.Attempt.Seq != 1 || o.Attempts != 1 {
		t.Fatalf("attempt %+v", o.Attempt)
	}
	if _, err := l.BeginAttempt(c, o, "W", time.Minute); !isState(err) {
		t.Fatalf("second attempt in flight: %v", err)
	}
	if _, err := l.Fail(c, o, events.Error{Code: "X"}); !isState(err) {
		t.Fatalf("fail with an attempt in flight: %v", err)
	}
	if _, err := l.Release(c, o, "W"); !isState(err) {
		t.Fatalf("release with an attempt in flight: %v", err)
	}
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 1, provider.BuyResult{SecretNo: "17000000001", RequestID: "r1"}))
	if o.Attempt != nil || len(o.Numbers) != 1 || o.Numbers[0].Published || o.Numbers[0].Attempt != 1 {
		t.Fatalf("after purchase %+v", o)
	}
	if _, err := l.Complete(c, o); !isState(err) {
		t.Fatalf("complete with 1 of 2: %v", err)
	}
	// A refused buy leaves nothing in flight.
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", time.Minute))
	o = must[*ledger.Order](t)(l.AbandonAttempt(c, o, 2, events.Error{Code: "Throttled", Message: "slow down"}))
	if o.Attempt != nil || o.LastError == nil || o.LastError.Code != "Throttled" {
		t.Fatalf("after abandon %+v", o)
	}
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", time.Minute))
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 3, provider.BuyResult{SecretNo: "17000000002", RequestID: "r3"}))
	o = must[*ledger.Order](t)(l.MarkNumberPublished(c, o, "17000000001"))
	if len(o.Unpublished()) != 1 || o.Unpublished()[0].SecretNo != "17000000002" {
		t.Fatalf("unpublished %+v", o.Unpublished())
	}
	if _, err := l.MarkNumberPublished(c, o, "999"); !isState(err) {
		t.Fatalf("mark an unknown number: %v", err)
	}
	o = must[*ledger.Order](t)(l.Complete(c, o))
	if o.Status != ledger.StatusCompleted || o.Claim != nil || o.EventPublished {
		t.Fatalf("completed %+v", o)
	}
	if _, err := l.Claim(c, o, "W2", time.Minute); !isState(err) {
		t.Fatalf("claim of a completed order: %v", err)
	}
	o = must[*ledger.Order](t)(l.MarkEventPublished(c, o, ledger.StatusCompleted))
	if !o.EventPublished {
		t.Fatal("event not marked")
	}
	if got := o.NumberList(); fmt.Sprint(got) != "[17000000001 17000000002]" {
		t.Fatalf("numbers %v", got)
	}

	// The stored JSON is the documented schema.
	e, err := kv.Get(c, "d")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.Unmarshal(e.Value(), &raw)
	for _, k := range []string{"orderId", "request", "requestHash", "status", "quantity", "numbers", "attempts", "eventPublished", "requestPublished", "createdAt", "updatedAt", "lastError"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stored entry lacks %q: %s", k, e.Value())
		}
	}
	t.Logf("entry at revision %d: %s", e.Revision(), e.Value())
}

// TestRecordPurchaseIsNeverLost: the answer of a buy arrives after another
// worker took the order over and put it in doubt; the number is still
// recorded, and it settles the doubt.
func TestRecordPurchaseIsNeverLost(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("e", 2))
	o = must[*ledger.Order](t)(l.Claim(c, o, "A", time.Second))
	a := must[*ledger.Order](t)(l.BeginAttempt(c, o, "A", time.Second))

	clk.Advance(time.Minute) // A is slow; its lease lapses
	seen := must[*ledger.Order](t)(l.Get(c, "e"))
	b := must[*ledger.Order](t)(l.Claim(c, seen, "B", time.Second))
	b = must[*ledger.Order](t)(l.MarkInDoubt(c, b, events.Error{Code: "InDoubt", Message: "attempt 1 has no result"}))
	if b.Status != ledger.StatusInDoubt || b.Attempt == nil {
		t.Fatalf("in doubt %+v", b)
	}

	// A's answer finally comes, and A writes it with its stale copy.
	got := must[*ledger.Order](t)(l.RecordPurchase(c, a, 1, provider.BuyResult{SecretNo: "17000000009", RequestID: "late"}))
	if got.Status != ledger.StatusAccepted || got.Attempt != nil || len(got.Numbers) != 1 || len(got.Settlements) != 1 ||
		got.Settlements[0].By != "worker" || got.Settlements[0].Outcome != ledger.OutcomeBought {
		t.Fatalf("after the late answer %+v", got)
	}
	// Recording it again changes nothing.
	again := must[*ledger.Order](t)(l.RecordPurchase(c, a, 1, provider.BuyResult{SecretNo: "17000000009", RequestID: "late"}))
	if len(again.Numbers) != 1 || len(again.Settlements) != 1 {
		t.Fatalf("recorded twice: %+v", again)
	}
}

func TestSettle(t *testing.T) {
	l, _, _ := setup(t)
	c := ctx(t)
	inDoubt := func(id string) *ledger.Order {
		o, _, _ := l.CreateOrGet(c, order(id, 2))
		o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute))
		o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", time.Minute))
		return must[*ledger.Order](t)(l.MarkInDoubt(c, o, events.Error{Code: "InDoubt", Message: "cut"}))
	}
	inDoubt("f")
	for name, s := range map[string]ledger.Settlement{
		"no evidence":     {Outcome: ledger.OutcomeNotBought, By: "op"},
		"no one":          {Outcome: ledger.OutcomeNotBought, Evidence: "x"},
		"bought nothing?": {Outcome: ledger.OutcomeBought, By: "op", Evidence: "x"},
		"bad outcome":     {Outcome: "maybe", By: "op", Evidence: "x"},
	} {
		if _, err := l.Settle(c, "f", s); provider.KindOf(err) != provider.ErrInvalidParameter {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := l.Settle(c, "f", ledger.Settlement{Attempt: 7, Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "x"}); !isState(err) {
		t.Fatalf("settle the wrong attempt: %v", err)
	}
	o := must[*ledger.Order](t)(l.Settle(c, "f", ledger.Settlement{Outcome: ledger.OutcomeBought, SecretNo: "17000000005", By: "op", Evidence: "QuerySecretNoDetail: in pool"}))
	if o.Status != ledger.StatusAccepted || len(o.Numbers) != 1 || o.Attempt != nil || o.Settlements[0].Attempt != 1 || o.Error != nil {
		t.Fatalf("settled bought %+v", o)
	}
	if _, err := l.Settle(c, "f", ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "x"}); !isState(err) {
		t.Fatalf("settle twice: %v", err)
	}
	inDoubt("g")
	o = must[*ledger.Order](t)(l.Settle(c, "g", ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "no report in 24h"}))
	if o.Status != ledger.StatusAccepted || len(o.Numbers) != 0 {
		t.Fatalf("settled not bought %+v", o)
	}
	if _, err := l.Settle(c, "nope", ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "x"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("settle unknown: %v", err)
	}
}

func TestFailedAndListAndDelete(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	f, created, err := l.CreateFailed(c, events.OrderRequested{OrderID: "bad1"}, ledger.RawHash([]byte("junk")), events.Error{Code: "InvalidParameter", Message: "x"})
	if err != nil || !created || f.Status != ledger.StatusFailed {
		t.Fatalf("CreateFailed %+v %v %v", f, created, err)
	}
	if _, _, err := l.CreateFailed(c, events.OrderRequested{OrderID: "bad1"}, ledger.RawHash([]byte("other")), events.Error{}); !errors.Is(err, ledger.ErrPayloadConflict) {
		t.Fatalf("CreateFailed over another payload: %v", err)
	}
	if _, _, err := l.CreateOrGet(c, order("bad1", 1)); !errors.Is(err, ledger.ErrPayloadConflict) {
		t.Fatalf("valid order over a failed id: %v", err)
	}
	if _, _, err := l.CreateFailed(c, events.OrderRequested{OrderID: "a.b"}, "h", events.Error{}); provider.KindOf(err) != provider.ErrInvalidParameter {
		t.Fatalf("CreateFailed with a bad id: %v", err)
	}
	clk.Advance(time.Second)
	x, _, _ := l.CreateOrGet(c, order("x", 1))
	clk.Advance(time.Second)
	y, _, _ := l.CreateOrGet(c, order("y", 1))
	must[*ledger.Order](t)(l.Claim(c, y, "W", time.Minute))

	all := must[[]*ledger.Order](t)(l.List(c))
	if len(all) != 3 || all[0].OrderID != "bad1" || all[2].OrderID != "y" {
		t.Fatalf("List() = %d orders", len(all))
	}
	acc := must[[]*ledger.Order](t)(l.List(c, ledger.StatusAccepted, ledger.StatusFailed))
	if len(acc) != 2 {
		t.Fatalf("List(accepted, failed) = %d", len(acc))
	}

	// Undo of an unpublished accepted order, only at its revision.
	x2 := must[*ledger.Order](t)(l.MarkRequestPublished(c, x))
	if err := l.Delete(c, x2); !isState(err) {
		t.Fatalf("delete of a published order: %v", err)
	}
	z, _, _ := l.CreateOrGet(c, order("z", 1))
	must[*ledger.Order](t)(l.Claim(c, z, "W", time.Minute))
	if err := l.Delete(c, z); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("delete of a moved order: %v", err)
	}
	w, _, _ := l.CreateOrGet(c, order("w", 1))
	if err := l.Delete(c, w); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(c, "w"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("deleted order: %v", err)
	}
	if _, created, err := l.CreateOrGet(c, order("w", 2)); err != nil || !created {
		t.Fatalf("re-create after undo: %v %v", created, err)
	}
}

// TestLateRefusalSettlesDoubt: a refusal that arrives after the order was
// put in doubt over that attempt proves nothing was bought.
func TestLateRefusalSettlesDoubt(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("h", 1))
	o = must[*ledger.Order](t)(l.Claim(c, o, "A", time.Second))
	a := must[*ledger.Order](t)(l.BeginAttempt(c, o, "A", time.Second))
	clk.Advance(time.Minute)
	b := must[*ledger.Order](t)(l.Claim(c, must[*ledger.Order](t)(l.Get(c, "h")), "B", time.Second))
	must[*ledger.Order](t)(l.MarkInDoubt(c, b, events.Error{Code: "InDoubt", Message: "no result"}))

	got := must[*ledger.Order](t)(l.AbandonAttempt(c, a, 1, events.Error{Code: "Throttled", Message: "Throttling.User"}))
	if got.Status != ledger.StatusAccepted || got.Attempt != nil || len(got.Settlements) != 1 ||
		got.Settlements[0].Outcome != ledger.OutcomeNotBought || len(got.Numbers) != 0 {
		t.Fatalf("after the late refusal %+v", got)
	}
	// An attempt no longer in flight is left alone.
	same := must[*ledger.Order](t)(l.AbandonAttempt(c, a, 1, events.Error{Code: "Throttled"}))
	if same.Revision != got.Revision {
		t.Fatalf("abandoning a settled attempt wrote revision %d", same.Revision)
	}
}

func TestSettleBoughtChecksTheProof(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	inDoubt := func(id string) *ledger.Order {
		o, _, _ := l.CreateOrGet(c, order(id, 2))
		o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute))
		o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", time.Minute))
		return must[*ledger.Order](t)(l.MarkInDoubt(c, o, events.Error{Code: "InDoubt", Message: "cut"}))
	}
	o := inDoubt("p1")
	started := o.Attempt.StartedAt
	good := ledger.Proof{SecretNo: "13000000001", PoolKey: "FC1", City: "杭州", BoughtAt: started.Add(time.Second), Source: "QuerySecretNoDetail"}
	for name, c2 := range map[string]struct {
		p     ledger.Proof
		field string
	}{
		"no number":    {ledger.Proof{PoolKey: "FC1", BoughtAt: started}, "secretNo"},
		"other pool":   {ledger.Proof{SecretNo: "1", PoolKey: "FC2", BoughtAt: started}, "poolKey"},
		"other city":   {ledger.Proof{SecretNo: "1", City: "北京", BoughtAt: started}, "city"},
		"no time":      {ledger.Proof{SecretNo: "1"}, "boughtAt"},
		"bought early": {ledger.Proof{SecretNo: "1", BoughtAt: started.Add(-time.Hour)}, "boughtAt"},
	} {
		_, err := l.SettleBought(c, "p1", c2.p, "op", 2*time.Second)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.ErrInvalidParameter || pe.Field != c2.field {
			t.Errorf("%s: %v", name, err)
		}
	}
	got := must[*ledger.Order](t)(l.SettleBought(c, "p1", good, "op", 2*time.Second))
	if got.Status != ledger.StatusAccepted || !got.HasNumber("13000000001") || got.Settlements[0].By != "op" {
		t.Fatalf("settled %+v", got)
	}
	// The same number cannot settle another order's doubt.
	clk.Advance(time.Second)
	inDoubt("p2")
	good.BoughtAt = clk.Now()
	if _, err := l.SettleBought(c, "p2", good, "op", 2*time.Second); provider.KindOf(err) != provider.ErrConflict {
		t.Fatalf("a number of another order: %v", err)
	}
	d := ledger.ProofFromDetail(provider.NumberDetail{SecretNo: "13000000002", PoolKey: "FC1", City: "杭州", PurchaseTime: clk.Now(), RequestID: "R1"})
	if got := must[*ledger.Order](t)(l.SettleBought(c, "p2", d, "op", 2*time.Second)); !got.HasNumber("13000000002") ||
		!strings.Contains(got.Settlements[0].Evidence, "request R1") {
		t.Fatalf("settled from a detail: %+v", got.Settlements)
	}
}
