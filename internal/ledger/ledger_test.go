package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	a := must[*ledger.Order](t)(l.Claim(c, o, "A", time.Minute, 0))
	if !a.OwnedBy("A") || !a.Claimed(clk.Now()) || a.Deliveries != 1 {
		t.Fatalf("claimed %+v", a)
	}
	// B reads the order and finds A's live lease.
	seen := must[*ledger.Order](t)(l.Get(c, "b"))
	var ce *ledger.ClaimedError
	if _, err := l.Claim(c, seen, "B", time.Minute, 0); !errors.As(err, &ce) || ce.Owner != "A" {
		t.Fatalf("claim over a live lease: %v", err)
	}
	// A's lease lapses; B takes over by compare-and-set.
	clk.Advance(2 * time.Minute)
	b := must[*ledger.Order](t)(l.Claim(c, seen, "B", time.Minute, 0))
	if !b.OwnedBy("B") || !b.Claimed(clk.Now()) || b.Deliveries != 2 {
		t.Fatalf("take-over %+v", b)
	}
	// A still holds its old copy: every write of it is stale now.
	if _, err := l.BeginAttempt(c, a, "A", bounds(time.Minute)); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("stale BeginAttempt: %v", err)
	}
	if _, err := l.Claim(c, a, "A", time.Minute, 0); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("stale renewal: %v", err)
	}
	// And on the fresh copy A is not the owner.
	if _, err := l.BeginAttempt(c, b, "A", bounds(time.Minute)); !isState(err) {
		t.Fatalf("BeginAttempt by a non-owner: %v", err)
	}
	// The owner's claim again renews it and is not another delivery.
	r := must[*ledger.Order](t)(l.Claim(c, b, "B", 5*time.Minute, 7))
	if !r.Claim.LeaseUntil.Equal(clk.Now().Add(5*time.Minute)) || r.Deliveries != 2 || r.MessageSeq != 7 || !r.RequestPublished {
		t.Fatalf("renewed %+v", r)
	}
	rel := must[*ledger.Order](t)(l.Release(c, r, "B"))
	if rel.Status != ledger.StatusAccepted || rel.Claim != nil {
		t.Fatalf("released %+v", rel)
	}
}

func bounds(lease time.Duration) ledger.Bounds {
	return ledger.Bounds{Lease: lease, Answer: 20 * time.Second, Record: time.Minute}
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
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute, 0))
	var wins, stale atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.BeginAttempt(c, o, "W", bounds(time.Minute))
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
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute, 0))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", bounds(time.Minute)))
	if o.Attempt == nil || o.Attempt.Seq != 1 || o.Attempts != 1 {
		t.Fatalf("attempt %+v", o.Attempt)
	}
	if _, err := l.BeginAttempt(c, o, "W", bounds(time.Minute)); !isState(err) {
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
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", bounds(time.Minute)))
	o = must[*ledger.Order](t)(l.AbandonAttempt(c, o, 2, events.Error{Code: "Throttled", Message: "slow down"}))
	if o.Attempt != nil || o.LastError == nil || o.LastError.Code != "Throttled" {
		t.Fatalf("after abandon %+v", o)
	}
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", bounds(time.Minute)))
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
	if _, err := l.Claim(c, o, "W2", time.Minute, 0); !isState(err) {
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
	o = must[*ledger.Order](t)(l.Claim(c, o, "A", time.Second, 0))
	a := must[*ledger.Order](t)(l.BeginAttempt(c, o, "A", bounds(time.Second)))

	clk.Advance(time.Minute) // A is slow; its lease lapses
	seen := must[*ledger.Order](t)(l.Get(c, "e"))
	b := must[*ledger.Order](t)(l.Claim(c, seen, "B", time.Second, 0))
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
		o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute, 0))
		o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", bounds(time.Minute)))
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

// LeaveUnsettled notes, once per attempt, why the reports did not settle
// an attempt in doubt; the order stays in doubt, and nothing but the note
// changes. It refuses an order with nothing in doubt and an empty reason.
func TestLeaveUnsettled(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("u", 1))
	if _, err := l.LeaveUnsettled(c, o, "no report"); !isState(err) {
		t.Fatalf("an accepted order: %v", err)
	}
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute, 0))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", bounds(time.Minute)))
	o = must[*ledger.Order](t)(l.MarkInDoubt(c, o, events.Error{Code: "InDoubt", Message: "cut"}))
	if _, err := l.LeaveUnsettled(c, o, ""); provider.KindOf(err) != provider.ErrInvalidParameter {
		t.Fatalf("no reason: %v", err)
	}
	clk.Advance(time.Minute)
	left := must[*ledger.Order](t)(l.LeaveUnsettled(c, o, "no report within 10m"))
	if left.Status != ledger.StatusInDoubt || left.Attempt == nil || left.Error == nil ||
		*left.Unsettled != (ledger.Unsettled{Attempt: 1, Reason: "no report within 10m", At: clk.Now()}) {
		t.Fatalf("left %+v, unsettled %+v", left, left.Unsettled)
	}
	again := must[*ledger.Order](t)(l.LeaveUnsettled(c, left, "another reason"))
	if again.Revision != left.Revision || again.Unsettled.Reason != "no report within 10m" {
		t.Fatalf("noted twice: revision %d -> %d, %+v", left.Revision, again.Revision, again.Unsettled)
	}
	if _, err := l.LeaveUnsettled(c, o, "stale"); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("a stale read: %v", err)
	}
	settled := must[*ledger.Order](t)(l.Settle(c, "u", ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "console"}))
	if _, err := l.LeaveUnsettled(c, settled, "late"); !isState(err) {
		t.Fatalf("a settled order: %v", err)
	}
}

func TestFailedAndList(t *testing.T) {
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
	must[*ledger.Order](t)(l.Claim(c, y, "W", time.Minute, 0))

	all := must[[]*ledger.Order](t)(l.List(c))
	if len(all) != 3 || all[0].OrderID != "bad1" || all[2].OrderID != "y" {
		t.Fatalf("List() = %d orders", len(all))
	}
	acc := must[[]*ledger.Order](t)(l.List(c, ledger.StatusAccepted, ledger.StatusFailed))
	if len(acc) != 2 {
		t.Fatalf("List(accepted, failed) = %d", len(acc))
	}

	// Published marks are facts: they hold over a claim, and the sequence
	// only grows.
	z, _, _ := l.CreateOrGet(c, order("z", 1))
	claimed := must[*ledger.Order](t)(l.Claim(c, z, "W", time.Minute, 0))
	p := must[*ledger.Order](t)(l.MarkPublished(c, z, 5))
	if !p.RequestPublished || p.MessageSeq != 5 || !p.OwnedBy("W") || p.Revision == claimed.Revision {
		t.Fatalf("published over a claim: %+v", p)
	}
	if again := must[*ledger.Order](t)(l.MarkPublished(c, p, 3)); again.Revision != p.Revision || again.MessageSeq != 5 {
		t.Fatalf("an older sequence changed it: %+v", again)
	}
	_ = x
}

// TestLateRefusalSettlesDoubt: a refusal that arrives after the order was
// put in doubt over that attempt proves nothing was bought.
func TestLateRefusalSettlesDoubt(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("h", 1))
	o = must[*ledger.Order](t)(l.Claim(c, o, "A", time.Second, 0))
	a := must[*ledger.Order](t)(l.BeginAttempt(c, o, "A", bounds(time.Second)))
	clk.Advance(time.Minute)
	b := must[*ledger.Order](t)(l.Claim(c, must[*ledger.Order](t)(l.Get(c, "h")), "B", time.Second, 0))
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

// TestLateNumberIsNeverPastTheQuantity: a number whose attempt was settled
// as having bought nothing still lands, in the order when it still wants a
// number with no other attempt in flight, as Excess otherwise.
func TestLateNumberIsNeverPastTheQuantity(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	// Attempt 1 goes in doubt, an operator says nothing was bought.
	settledWrongly := func(id string, qty int) *ledger.Order {
		o, _, _ := l.CreateOrGet(c, order(id, qty))
		o = must[*ledger.Order](t)(l.Claim(c, o, "A", time.Second, 0))
		o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "A", bounds(time.Second)))
		o = must[*ledger.Order](t)(l.MarkInDoubt(c, o, events.Error{Code: "InDoubt", Message: "cut"}))
		return must[*ledger.Order](t)(l.Settle(c, id, ledger.Settlement{Outcome: ledger.OutcomeNotBought, By: "op", Evidence: "wrong"}))
	}
	late := provider.BuyResult{SecretNo: "17000000001", RequestID: "late"}

	// The order still wants it and nothing is in flight: it takes the slot.
	o := settledWrongly("l1", 2)
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 1, late))
	if len(o.Numbers) != 1 || len(o.Excess) != 0 || o.Status != ledger.StatusAccepted {
		t.Fatalf("late number into a free slot: %+v", o)
	}

	// The order's one slot is reserved by attempt 2 in flight: excess.
	o = settledWrongly("l2", 1)
	o = must[*ledger.Order](t)(l.Claim(c, o, "B", time.Second, 0))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "B", bounds(time.Second)))
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 1, late))
	if len(o.Numbers) != 0 || len(o.Excess) != 1 || o.Attempt == nil || o.Attempt.Seq != 2 {
		t.Fatalf("late number beside an attempt in flight: %+v", o)
	}
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 2, provider.BuyResult{SecretNo: "17000000002"}))
	if len(o.Numbers) != 1 || o.Remaining() != 0 {
		t.Fatalf("attempt 2's number: %+v", o)
	}

	// The order completed: excess, and released only on purpose.
	o = settledWrongly("l3", 1)
	o = must[*ledger.Order](t)(l.Claim(c, o, "B", time.Second, 0))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "B", bounds(time.Second)))
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 2, provider.BuyResult{SecretNo: "17000000003"}))
	if _, err := l.MarkReleased(c, "l3", "17000000004", "op", "x"); provider.KindOf(err) != provider.ErrInvalidParameter {
		t.Fatalf("release of a number the order does not hold: %v", err)
	}
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 1, provider.BuyResult{SecretNo: "17000000004"}))
	if _, err := l.MarkReleased(c, "l3", "17000000004", "op", "x"); !isState(err) {
		t.Fatalf("excess released before the order ended: %v", err)
	}
	o = must[*ledger.Order](t)(l.Complete(c, o))
	o = must[*ledger.Order](t)(l.RecordPurchase(c, o, 1, provider.BuyResult{SecretNo: "17000000004"}))
	if len(o.Numbers) != 1 || len(o.Excess) != 1 || !o.Holds("17000000004") || len(o.UnpublishedExcess()) != 1 {
		t.Fatalf("completed with a late number: %+v", o)
	}
	o = must[*ledger.Order](t)(l.MarkNumberPublished(c, o, "17000000004"))
	if len(o.UnpublishedExcess()) != 0 {
		t.Fatalf("excess not marked published: %+v", o.Excess)
	}
	if _, err := l.MarkReleased(c, "l3", "17000000003", "op", "x"); !isState(err) {
		t.Fatalf("a completed order's own number released: %v", err)
	}
	o = must[*ledger.Order](t)(l.MarkReleased(c, "l3", "17000000004", "op", "ReleaseSecretNo"))
	if o.Excess[0].Released == nil || o.Excess[0].Released.By != "op" {
		t.Fatalf("excess release not recorded: %+v", o.Excess[0])
	}
	_ = clk
}

// TestAttemptBounds: an attempt records when its answer may last arrive and
// be recorded; an attempt written before those fields existed gets the
// worker's defaults of then.
func TestAttemptBounds(t *testing.T) {
	l, _, clk := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("ab", 1))
	o = must[*ledger.Order](t)(l.Claim(c, o, "W", time.Minute, 0))
	o = must[*ledger.Order](t)(l.BeginAttempt(c, o, "W", ledger.Bounds{Lease: time.Minute, Answer: 20 * time.Second, Record: 2 * time.Minute}))
	a := o.Attempt
	if !a.AnsweredBy().Equal(clk.Now().Add(20*time.Second)) || !a.RecordedBy().Equal(clk.Now().Add(140*time.Second)) {
		t.Fatalf("bounds %+v", a)
	}
	old := ledger.Attempt{Seq: 1, StartedAt: clk.Now()}
	if !old.AnsweredBy().Equal(clk.Now().Add(20*time.Second)) || !old.RecordedBy().Equal(clk.Now().Add(140*time.Second)) {
		t.Fatalf("legacy bounds %v %v", old.AnsweredBy(), old.RecordedBy())
	}
}

// TestRedrivenIsACompareAndSet: of two sweepers that read the same revision
// only one counts a redrive; a stopped order is not driven.
func TestRedrivenIsACompareAndSet(t *testing.T) {
	l, _, _ := setup(t)
	c := ctx(t)
	o, _, _ := l.CreateOrGet(c, order("rd", 1))
	first := must[*ledger.Order](t)(l.MarkRedriven(c, o))
	if first.Redriven != 1 || first.RedrivenAt.IsZero() {
		t.Fatalf("redriven %+v", first)
	}
	if _, err := l.MarkRedriven(c, o); !errors.Is(err, ledger.ErrStale) {
		t.Fatalf("second sweeper on the same revision: %v", err)
	}
	f := must[*ledger.Order](t)(l.Fail(c, first, events.Error{Code: "X"}))
	if _, err := l.MarkRedriven(c, f); !isState(err) {
		t.Fatalf("redrive of a failed order: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(id string, st ledger.Status, min int) *ledger.Order {
		return &ledger.Order{OrderID: id, Status: st, CreatedAt: t0.Add(time.Duration(min) * time.Minute)}
	}
	s := ledger.Summarize([]*ledger.Order{
		at("done-oldest", ledger.StatusCompleted, 0),
		at("failed", ledger.StatusFailed, 1),
		at("doubt", ledger.StatusInDoubt, 2),
		at("b-same-time", ledger.StatusAccepted, 2),
		at("working", ledger.StatusProcessing, 3),
	})
	want := map[ledger.Status]int{ledger.StatusCompleted: 1, ledger.StatusFailed: 1, ledger.StatusInDoubt: 1, ledger.StatusAccepted: 1, ledger.StatusProcessing: 1}
	if s.Total != 5 || len(s.ByStatus) != len(want) {
		t.Fatalf("summary %+v", s)
	}
	for st, n := range want {
		if s.ByStatus[st] != n {
			t.Errorf("%s: %d, want %d", st, s.ByStatus[st], n)
		}
	}
	if s.OldestOpen == nil || s.OldestOpen.OrderID != "b-same-time" {
		t.Errorf("oldest open %+v, want b-same-time (the first open one, ties by id)", s.OldestOpen)
	}
	if none := ledger.Summarize([]*ledger.Order{at("x", ledger.StatusCompleted, 0)}); none.OldestOpen != nil || none.Total != 1 {
		t.Errorf("no open order: %+v", none)
	}
}
