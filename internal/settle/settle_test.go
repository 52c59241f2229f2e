package settle_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

const otherPool = "FC200000000000002"

// fixture is the buy world with a worker (settled orders are published
// again and bought to the end) and a settler whose clock may run ahead.
type fixture struct {
	*buytest.Env
	t     *testing.T
	skew  *atomic.Int64 // the emulator clock's offset from now
	ahead *atomic.Int64 // the settler clock's offset from now
	s     *settle.Settler
}

const wait = time.Minute

func newFixture(t *testing.T, opts ...buytest.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, skew: new(atomic.Int64), ahead: new(atomic.Int64)}
	f.Env = buytest.New(t, append([]buytest.Option{buytest.WithEmulator(
		dypls.WithClock(func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }),
		dypls.WithPool(otherPool),
	)}, opts...)...)
	f.Run(f.Worker("w", worker.WithBuyTimeout(time.Second), worker.WithRetry(1, time.Millisecond)))
	f.s = f.Settler(settle.WithWait(wait), settle.WithClock(func() time.Time { return time.Now().Add(time.Duration(f.ahead.Load())) }))
	return f
}

// inDoubt queues orders of qty whose first buys are cut after selling, and
// waits until they are in doubt.
func (f *fixture) inDoubt(qty int, ids ...string) {
	f.t.Helper()
	f.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	for _, id := range ids {
		f.PublishRaw(buytest.Body(f.t, buytest.Order(id, qty)), id)
	}
	for id, o := range f.WaitStopped(ids, 20*time.Second) {
		if o.Status != ledger.StatusInDoubt {
			f.t.Fatalf("order %s is %s, want in_doubt", id, o.Status)
		}
	}
	f.Faults.Set("BuySecretNo", fault.Fault{})
}

// lastSold is the last number the emulator sold.
func (f *fixture) lastSold() string {
	p := f.Emu.Purchases()
	return p[len(p)-1].SecretNo
}

// buyByHand buys a number outside any order, ago by the provider's clock,
// and returns it.
func (f *fixture) buyByHand(r provider.BuyRequest, ago time.Duration) string {
	f.t.Helper()
	f.skew.Store(int64(-ago))
	defer f.skew.Store(0)
	res, err := f.Aliyun.Buy(context.Background(), r)
	if err != nil {
		f.t.Fatal(err)
	}
	return res.SecretNo
}

// deliver stores on the reports stream the emulator's reports of numbers.
func (f *fixture) deliver(numbers ...string) {
	f.t.Helper()
	for _, r := range f.Emu.Reports() {
		for _, no := range numbers {
			if r.SecretNo == no {
				if _, err := reports.Publish(buytest.Ctx(f.t), f.ReportsPub, mustJSON(r)); err != nil {
					f.t.Fatal(err)
				}
			}
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fixture) pass() settle.PassStats {
	f.t.Helper()
	st, err := f.s.Pass(buytest.Ctx(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// pastWait runs the settler's clock past the wait of id's attempt.
func (f *fixture) pastWait(id string) {
	o := f.Get(id)
	f.ahead.Store(int64(o.Attempt.AnsweredBy().Add(wait + time.Second).Sub(time.Now())))
}

// settledByReports checks that the attempt in doubt of id was settled by
// the reports with want, and that the order then completed with it.
func (f *fixture) settledByReports(id, want string) *ledger.Order {
	f.t.Helper()
	o := f.WaitCompleted([]string{id}, 20*time.Second)[id]
	if len(o.Settlements) != 1 {
		f.t.Fatalf("settlements %+v", o.Settlements)
	}
	s := o.Settlements[0]
	if s.By != settle.By || s.Outcome != ledger.OutcomeBought || s.SecretNo != want || o.Numbers[0].SecretNo != want ||
		!strings.Contains(s.Evidence, "NumberManagementReport") || !strings.Contains(s.Evidence, "QuerySecretNoDetail") {
		f.t.Fatalf("settlement %+v, numbers %v, want %s by reports", s, o.NumberList(), want)
	}
	return o
}

// staysInDoubt checks that passes leave id in doubt, unchanged, until its
// wait is over, and then record why it is left to an operator, once.
func (f *fixture) staysInDoubt(id, why string) {
	f.t.Helper()
	before := f.Get(id)
	if st := f.pass(); st.Settled != 0 || st.Left != 0 || st.Waiting == 0 {
		f.t.Fatalf("a pass within the wait: %+v", st)
	}
	if o := f.Get(id); o.Revision != before.Revision {
		f.t.Fatalf("a pass within the wait changed the order: %+v", o)
	}
	f.pastWait(id)
	if st := f.pass(); st.Settled != 0 || st.Left == 0 {
		f.t.Fatalf("a pass after the wait: %+v", st)
	}
	o := f.Get(id)
	if o.Status != ledger.StatusInDoubt || o.Attempt == nil || len(o.Settlements) != 0 || len(o.Numbers) != 0 ||
		o.Unsettled == nil || o.Unsettled.Attempt != o.Attempt.Seq || !strings.Contains(o.Unsettled.Reason, why) ||
		!strings.Contains(o.Unsettled.Reason, "left to an operator") {
		f.t.Fatalf("order %s %+v, unsettled %+v; want in doubt, left to an operator because %q", o.Status, o.Settlements, o.Unsettled, why)
	}
	f.pass()
	if again := f.Get(id); again.Revision != o.Revision {
		f.t.Fatal("a later pass wrote on an order left to an operator")
	}
}

var carrier = provider.BuyRequest{PoolKey: buytest.Pool, City: "杭州", SpecID: provider.SpecCarrier}

// Each rule of the evidence, and each refusal, through the automatic
// settlement: a pass settles from the one report that fits, and changes
// nothing but the note of why when none or several do.
func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		// evidence delivers reports for the attempt in doubt of "o" (whose
		// own number is own) and returns the number that settles it, if one.
		evidence func(f *fixture, own string) string
		why      string // when nothing settles it: part of the reason
	}{
		{"its own report", func(f *fixture, own string) string { f.deliver(own); return own }, ""},
		{"its report delivered twice", func(f *fixture, own string) string {
			f.deliver(own)
			var twice reconcile.Report
			for _, r := range f.Emu.Reports() {
				if r.SecretNo == own {
					twice = reconcile.Report{SecretNo: r.SecretNo, City: r.City, PartnerKey: r.PartnerKey, OperatingTime: r.OperatingTime, Status: r.Status}
				}
			}
			// MNS delivered it again after the duplicate window: another message.
			if _, err := f.ReportsPub.Publish(buytest.Ctx(f.t), events.SubjectNumberReports, "again", mustJSON(twice), nil); err != nil {
				f.t.Fatal(err)
			}
			return own
		}, ""},
		{"besides a number of another type", func(f *fixture, own string) string {
			f.deliver(own, f.buyByHand(provider.BuyRequest{PoolKey: buytest.Pool, City: "杭州", SpecID: provider.SpecVirtual}, 0))
			return own
		}, ""},
		{"besides a number of another city", func(f *fixture, own string) string {
			f.deliver(own, f.buyByHand(provider.BuyRequest{PoolKey: buytest.Pool, City: "北京", SpecID: provider.SpecCarrier}, 0))
			return own
		}, ""},
		{"besides a number of another pool", func(f *fixture, own string) string {
			f.deliver(own, f.buyByHand(provider.BuyRequest{PoolKey: otherPool, City: "杭州", SpecID: provider.SpecCarrier}, 0))
			return own
		}, ""},
		{"besides a number bought before the attempt", func(f *fixture, own string) string {
			f.deliver(own, f.buyByHand(carrier, time.Minute))
			return own
		}, ""},
		{"no report", func(f *fixture, own string) string { return "" }, "no report shows a number created"},
		{"only a number of another pool", func(f *fixture, own string) string {
			f.deliver(f.buyByHand(provider.BuyRequest{PoolKey: otherPool, City: "杭州", SpecID: provider.SpecCarrier}, 0))
			return ""
		}, "no report shows a number created"},
		{"only a number bought before the attempt", func(f *fixture, own string) string {
			f.deliver(f.buyByHand(carrier, time.Minute))
			return ""
		}, "no report shows a number created"},
		{"its number deleted since", func(f *fixture, own string) string {
			if err := f.Aliyun.Release(context.Background(), buytest.Pool, own); err != nil {
				f.t.Fatal(err)
			}
			f.deliver(own) // created, then deleted
			return ""
		}, "no report shows a number created"},
		{"two numbers that fit", func(f *fixture, own string) string {
			f.deliver(own, f.buyByHand(carrier, 0))
			return ""
		}, "ambiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.inDoubt(2, "o")
			own := f.lastSold()
			want := tc.evidence(f, own)
			if want == "" {
				f.staysInDoubt("o", tc.why)
				if st := f.s.Stats(); st.Settled != 0 || st.Left != 1 {
					t.Fatalf("stats %+v", st)
				}
				return
			}
			if st := f.pass(); st.Settled != 1 {
				t.Fatalf("pass %+v", st)
			}
			f.settledByReports("o", want)
			if st := f.s.Stats(); st.Settled != 1 || st.Left != 0 {
				t.Fatalf("stats %+v", st)
			}
			if st := f.pass(); st.Open != 0 {
				t.Fatalf("a pass after settling: %+v", st)
			}
		})
	}
}

// A number another order holds is never taken, though its report is in the
// window; the attempt's own number is.
func TestHeldNumberIsNotTaken(t *testing.T) {
	f := newFixture(t)
	f.PublishRaw(buytest.Body(t, buytest.Order("o-done", 1)), "o-done")
	done := f.WaitCompleted([]string{"o-done"}, 20*time.Second)["o-done"]
	f.inDoubt(1, "o")
	own := f.lastSold()
	f.deliver(done.Numbers[0].SecretNo, own)
	if st := f.pass(); st.Settled != 1 {
		t.Fatalf("pass %+v", st)
	}
	o := f.settledByReports("o", own)
	f.Audit(map[string]*ledger.Order{"o-done": done, "o": o})
}

// Two attempts in doubt at once that may each have bought either number
// are never guessed between: both are left to an operator.
func TestTwoAttemptsInDoubtAreNotGuessed(t *testing.T) {
	f := newFixture(t)
	f.inDoubt(1, "o-a", "o-b")
	f.DeliverReports()
	for _, id := range []string{"o-a", "o-b"} {
		if o := f.Get(id); o.Status != ledger.StatusInDoubt {
			t.Fatalf("%s is %s", id, o.Status)
		}
	}
	if st := f.pass(); st.Settled != 0 || st.Waiting != 2 {
		t.Fatalf("pass %+v", st)
	}
	f.pastWait("o-a")
	f.pastWait("o-b")
	if st := f.pass(); st.Left != 2 {
		t.Fatalf("pass %+v", st)
	}
	for _, id := range []string{"o-a", "o-b"} {
		o := f.Get(id)
		if o.Status != ledger.StatusInDoubt || o.Unsettled == nil || !strings.Contains(o.Unsettled.Reason, "could as well be") {
			t.Fatalf("%s: %s %+v", id, o.Status, o.Unsettled)
		}
	}
}

// A provider that cannot answer QuerySecretNoDetail is asked again however
// long it takes: the attempt is not left to an operator for it, and is
// settled once the provider answers.
func TestProviderDownWaitsPastTheWait(t *testing.T) {
	f := newFixture(t)
	f.inDoubt(1, "o")
	own := f.lastSold()
	f.deliver(own)
	f.Faults.Set("QuerySecretNoDetail", fault.Fault{ErrorCode: "ServiceUnavailable"})
	f.pastWait("o")
	if st := f.pass(); st.Settled != 0 || st.Left != 0 || st.Waiting != 1 {
		t.Fatalf("pass with the provider down %+v", st)
	}
	if o := f.Get("o"); o.Unsettled != nil {
		t.Fatalf("left to an operator for the provider's outage: %+v", o.Unsettled)
	}
	f.Faults.Set("QuerySecretNoDetail", fault.Fault{})
	if st := f.pass(); st.Settled != 1 {
		t.Fatalf("pass %+v", st)
	}
	f.settledByReports("o", own)
}

// An attempt settled meanwhile by someone else (its late answer, an
// operator) is left alone; so is one already left to an operator.
func TestSettledElsewhereIsLeftAlone(t *testing.T) {
	f := newFixture(t)
	f.inDoubt(1, "o")
	own := f.lastSold()
	if _, err := f.Reconciler().Bought(context.Background(), "o", own, "alice"); err != nil {
		t.Fatal(err)
	}
	f.deliver(own)
	if st := f.pass(); st.Open != 0 || st.Settled != 0 {
		t.Fatalf("pass %+v", st)
	}
	o := f.WaitCompleted([]string{"o"}, 20*time.Second)["o"]
	if len(o.Settlements) != 1 || o.Settlements[0].By != "alice" {
		t.Fatalf("settlements %+v", o.Settlements)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	f := newFixture(t)
	for name, opts := range map[string][]settle.Option{
		"no wait":   {settle.WithWait(0)},
		"no passes": {settle.WithEvery(0, time.Minute)},
		"no rescan": {settle.WithEvery(time.Second, -1)},
	} {
		if _, err := settle.New(f.Ledger, f.Reconciler(), f.Queue.Reports, opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := settle.New(nil, f.Reconciler(), f.Queue.Reports); err == nil {
		t.Error("no ledger: no error")
	}
}
