package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

const pool = buytest.Pool

// stack is the buy world with a worker consuming the queue (settled orders
// are published again and taken by it) and the operator's reconciler.
type stack struct {
	*buytest.Env
	t    *testing.T
	rec  *reconcile.Reconciler
	skew *atomic.Int64 // the emulator clock's offset from now
}

func newStack(t *testing.T, hook worker.Hook, opts ...reconcile.Option) *stack {
	t.Helper()
	skew := new(atomic.Int64)
	e := buytest.New(t, buytest.WithEmulator(dypls.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })))
	wopts := []worker.Option{worker.WithBuyTimeout(time.Second), worker.WithRetry(1, time.Millisecond)}
	if hook != nil {
		wopts = append(wopts, worker.WithFaultHook(hook))
	}
	e.Run(e.Worker("w", wopts...))
	return &stack{Env: e, t: t, rec: e.Reconciler(opts...), skew: skew}
}

// buyByHand buys a number outside any order, the given time ago by the
// provider's clock.
func (s *stack) buyByHand(ago time.Duration) string {
	s.t.Helper()
	s.skew.Store(int64(-ago))
	defer s.skew.Store(0)
	r, err := s.Aliyun.Buy(context.Background(), provider.BuyRequest{PoolKey: pool, City: "杭州", SpecID: provider.SpecCarrier})
	if err != nil {
		s.t.Fatal(err)
	}
	return r.SecretNo
}

// order queues one order and waits until it stops.
func (s *stack) order(id string, qty int) *ledger.Order {
	s.t.Helper()
	s.PublishRaw(buytest.Body(s.t, buytest.Order(id, qty)), id)
	return s.WaitStopped([]string{id}, 20*time.Second)[id]
}

// ended waits until a settled order, published again, stops.
func (s *stack) ended(id string) *ledger.Order {
	s.t.Helper()
	return s.WaitStopped([]string{id}, 20*time.Second)[id]
}

func (s *stack) get(id string) *ledger.Order {
	s.t.Helper()
	o, err := s.Ledger.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// inDoubtByCut makes an order whose first buy bought a number and lost the
// answer.
func (s *stack) inDoubtByCut(id string, qty int) *ledger.Order {
	s.t.Helper()
	s.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	o := s.order(id, qty)
	s.Faults.Set("BuySecretNo", fault.Fault{})
	if o.Status != ledger.StatusInDoubt || o.Attempt == nil {
		s.t.Fatalf("order %s is %s, want in_doubt", id, o.Status)
	}
	return o
}

func (s *stack) sold() []string {
	var out []string
	for _, p := range s.Emu.Purchases() {
		out = append(out, p.SecretNo)
	}
	return out
}

// checkBooks audits the money rule over orders.
func (s *stack) checkBooks(orders ...string) {
	s.t.Helper()
	m := map[string]*ledger.Order{}
	for _, id := range orders {
		m[id] = s.get(id)
	}
	s.Audit(m)
}

func TestSettleWithTheNumber(t *testing.T) {
	s := newStack(t, nil)
	s.inDoubtByCut("o-1", 3)
	no := s.sold()[0]
	if _, err := s.rec.Bought(context.Background(), "o-1", no, "alice"); err != nil {
		t.Fatal(err)
	}
	o := s.ended("o-1")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 3 || o.Numbers[0].SecretNo != no {
		t.Fatalf("after settling: %s %+v", o.Status, o.Numbers)
	}
	st := o.Settlements[0]
	if st.By != "alice" || st.Outcome != ledger.OutcomeBought || !strings.Contains(st.Evidence, "QuerySecretNoDetail") {
		t.Fatalf("settlement %+v", st)
	}
	s.checkBooks("o-1")
}

func TestSettleFromReports(t *testing.T) {
	s := newStack(t, nil)
	// An earlier order's numbers are in the reports too; they settle nothing.
	if o := s.order("o-before", 2); o.Status != ledger.StatusCompleted {
		t.Fatalf("o-before %s", o.Status)
	}
	doubt := s.inDoubtByCut("o-2", 2)
	reports := reportsOf(t, s)
	lost := reports[len(reports)-1]
	if lost.Status != reconcile.ReportCreated || lost.SecretNo != s.sold()[2] {
		t.Fatalf("the last report %+v is not the lost purchase's", lost)
	}
	at := func(r reconcile.Report, d time.Duration, status int) reconcile.Report {
		tm, _ := time.ParseInLocation("2006-01-02 15:04:05", r.OperatingTime, time.FixedZone("CST", 8*3600))
		r.OperatingTime, r.Status = tm.Add(d).Format("2006-01-02 15:04:05"), status
		return r
	}
	// Released since it was created: not a number the order holds.
	_, err := s.rec.FromReports(context.Background(), "o-2", append(slices.Clone(reports), at(lost, time.Second, reconcile.ReportDeleted)), "bob")
	if provider.KindOf(err) != provider.ErrNotFound {
		t.Fatalf("a number deleted since: %v", err)
	}
	if s.get("o-2").Revision != doubt.Revision {
		t.Fatal("refused reports changed the order")
	}
	// A deletion before it was created (released, then bought again) and a
	// message delivered twice do not hide it or make it ambiguous.
	reports = append([]reconcile.Report{at(lost, -time.Hour, reconcile.ReportDeleted)}, append(reports, lost)...)
	if _, err := s.rec.FromReports(context.Background(), "o-2", reports, "bob"); err != nil {
		t.Fatal(err)
	}
	o := s.ended("o-2")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 2 || !strings.Contains(o.Settlements[0].Evidence, "NumberManagementReport") {
		t.Fatalf("after settling: %s %+v %+v", o.Status, o.Numbers, o.Settlements)
	}
	s.checkBooks("o-before", "o-2")
}

// reportsOf renders the emulator's NumberManagementReport messages as the
// operator would feed them in: JSON lines.
func reportsOf(t *testing.T, s *stack) []reconcile.Report {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range s.Emu.Reports() {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	reports, err := reconcile.ParseReports(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

// The operator's word that nothing was bought is believed only once the
// attempt's answer can no longer arrive and be recorded: a number landing
// after it would be bought on top.
func TestSettleNothingBought(t *testing.T) {
	later := new(atomic.Int64)
	s := newStack(t, nil, reconcile.WithClock(func() time.Time { return time.Now().Add(time.Duration(later.Load())) }))
	// The answer is slower than the client waits: the emulator drops the
	// call, so nothing is bought, but the client cannot know.
	s.Faults.Set("BuySecretNo", fault.Fault{Latency: 2 * time.Second})
	o := s.order("o-3", 2)
	s.Faults.Set("BuySecretNo", fault.Fault{})
	if o.Status != ledger.StatusInDoubt || len(s.sold()) != 0 {
		t.Fatalf("order %s, %d sold", o.Status, len(s.sold()))
	}
	_, err := s.rec.NothingBought(context.Background(), "o-3", "carol", "the console shows no new number")
	var se *ledger.StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "may still be answered") {
		t.Fatalf("nothing-bought while the answer may still land: %v", err)
	}
	if got := s.get("o-3"); got.Revision != o.Revision {
		t.Fatal("a refused settlement changed the order")
	}
	later.Store(int64(o.Attempt.RecordedBy().Sub(time.Now()) + time.Second))
	if _, err := s.rec.NothingBought(context.Background(), "o-3", "carol", "the console shows no new number"); err != nil {
		t.Fatal(err)
	}
	o = s.ended("o-3")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 2 || o.Settlements[0].Outcome != ledger.OutcomeNotBought {
		t.Fatalf("after settling: %s %+v", o.Status, o.Settlements)
	}
	s.checkBooks("o-3")
}

// Wrong or missing evidence changes nothing.
func TestRefusals(t *testing.T) {
	s := newStack(t, nil)
	ctx := context.Background()
	done := s.order("o-done", 1)
	early := s.buyByHand(time.Minute)
	doubt := s.inDoubtByCut("o-doubt", 2)
	bought := s.sold()[2] // the in-doubt attempt's number

	tests := []struct {
		name string
		do   func() error
		kind provider.Kind
	}{
		{"a completed order", func() error { _, err := s.rec.NothingBought(ctx, "o-done", "x", ""); return err }, provider.ErrConflict},
		{"an unknown order", func() error { _, err := s.rec.Bought(ctx, "nope", bought, "x"); return err }, provider.ErrNotFound},
		{"a number not in the pool", func() error { _, err := s.rec.Bought(ctx, "o-doubt", "13999999999", "x"); return err }, provider.ErrInvalidParameter},
		{"a number bought before the attempt", func() error { _, err := s.rec.Bought(ctx, "o-doubt", early, "x"); return err }, provider.ErrInvalidParameter},
		{"another order's number", func() error { _, err := s.rec.Bought(ctx, "o-doubt", done.Numbers[0].SecretNo, "x"); return err }, provider.ErrConflict},
		{"no number", func() error { _, err := s.rec.Bought(ctx, "o-doubt", "", "x"); return err }, provider.ErrInvalidParameter},
		{"nobody", func() error { _, err := s.rec.Bought(ctx, "o-doubt", bought, ""); return err }, provider.ErrInvalidParameter},
		{"no reports", func() error { _, err := s.rec.FromReports(ctx, "o-doubt", nil, "x"); return err }, provider.ErrNotFound},
		{"release of an order in doubt", func() error { _, err := s.rec.Release(ctx, "o-doubt", "x"); return err }, provider.ErrConflict},
		{"release of a completed order", func() error { _, err := s.rec.Release(ctx, "o-done", "x"); return err }, provider.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if provider.KindOf(err) != tt.kind {
				t.Fatalf("got %v (%s), want %s", err, provider.KindOf(err), tt.kind)
			}
			if got := s.get("o-doubt"); got.Revision != doubt.Revision || got.Status != ledger.StatusInDoubt {
				t.Fatalf("the order in doubt changed: %s rev %d", got.Status, got.Revision)
			}
		})
	}

	// Two numbers created in the pool since the attempt began (the lost one
	// and one bought by hand): the reports are ambiguous.
	if _, err := s.Aliyun.Buy(ctx, provider.BuyRequest{PoolKey: pool, City: "杭州", SpecID: provider.SpecCarrier}); err != nil {
		t.Fatal(err)
	}
	_, err := s.rec.FromReports(ctx, "o-doubt", reportsOf(t, s), "x")
	if provider.KindOf(err) != provider.ErrConflict || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("ambiguous reports: %v", err)
	}
	if got := s.get("o-doubt"); got.Revision != doubt.Revision {
		t.Fatal("ambiguous reports changed the order")
	}
}

// A failed partial order's numbers are released only when asked, once.
func TestReleaseFailedOrder(t *testing.T) {
	var s *stack
	// After the first number is recorded, the pool's stock runs out.
	s = newStack(t, func(_ context.Context, p worker.Point, id string) error {
		if p == worker.AfterRecord && id == "o-partial" {
			s.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
		}
		return nil
	})
	o := s.order("o-partial", 3)
	s.Faults.Set("BuySecretNo", fault.Fault{})
	if o.Status != ledger.StatusFailed || len(o.Numbers) != 1 {
		t.Fatalf("order %s with %d numbers, want failed with 1", o.Status, len(o.Numbers))
	}
	no := o.Numbers[0].SecretNo
	if _, err := s.Aliyun.NumberDetail(context.Background(), pool, no); err != nil {
		t.Fatalf("before release: %v", err)
	}

	released, err := s.rec.Release(context.Background(), "o-partial", "dave")
	if err != nil || len(released) != 1 || released[0] != no {
		t.Fatalf("Release = %v, %v", released, err)
	}
	if _, err := s.Aliyun.NumberDetail(context.Background(), pool, no); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("after release the pool still has %s: %v", no, err)
	}
	got := s.get("o-partial")
	if r := got.Numbers[0].Released; r == nil || r.By != "dave" || r.Evidence != "ReleaseSecretNo" {
		t.Fatalf("release not recorded: %+v", got.Numbers[0])
	}
	again, err := s.rec.Release(context.Background(), "o-partial", "dave")
	if err != nil || len(again) != 0 || s.Emu.Calls("ReleaseSecretNo") != 1 {
		t.Fatalf("a second release: %v %v, %d calls", again, err, s.Emu.Calls("ReleaseSecretNo"))
	}
}

func TestParseReports(t *testing.T) {
	good := `{"secretNo":"13000000001","city":"杭州","partnerKey":"FC1","operatingTime":"2026-11-22 10:00:00","status":1}`
	for _, tc := range []struct {
		in string
		n  int
		ok bool
	}{
		{good, 1, true},
		{good + "\n\n" + good, 2, true},
		{"[" + good + "," + good + "]", 2, true},
		{"", 0, true},
		{`{"secretNo":"1"`, 0, false},
		{`{"city":"杭州","operatingTime":"2026-11-22 10:00:00","status":1}`, 0, false},
		{`{"secretNo":"1","operatingTime":"yesterday","status":1}`, 0, false},
		{`{"secretNo":"1","operatingTime":"2026-11-22 10:00:00","status":7}`, 0, false},
	} {
		got, err := reconcile.ParseReports(strings.NewReader(tc.in))
		if (err == nil) != tc.ok || len(got) != tc.n {
			t.Errorf("ParseReports(%q) = %d, %v", tc.in, len(got), err)
		}
	}
}

// settlements counts what an Observer is told.
type settlements struct{ n atomic.Int64 }

func (s *settlements) Order(_ context.Context, outcome string, age time.Duration) {
	if outcome == "settled" && age >= 0 {
		s.n.Add(1)
	}
}

// Each settlement is told to the Observer once; a refused one is not.
func TestObserverIsToldOfSettlements(t *testing.T) {
	obs := &settlements{}
	s := newStack(t, nil, reconcile.WithObserver(obs))
	s.inDoubtByCut("obs-1", 1)
	if _, err := s.rec.Bought(context.Background(), "obs-1", "13900000000", "alice"); err == nil {
		t.Fatal("a number not in the pool settled the order")
	}
	if obs.n.Load() != 0 {
		t.Fatalf("a refused settlement was told %d times", obs.n.Load())
	}
	if _, err := s.rec.Bought(context.Background(), "obs-1", s.sold()[0], "alice"); err != nil {
		t.Fatal(err)
	}
	if s.ended("obs-1").Status != ledger.StatusCompleted || obs.n.Load() != 1 {
		t.Fatalf("told %d settlements, want 1", obs.n.Load())
	}
}
