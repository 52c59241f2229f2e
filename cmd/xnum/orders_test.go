package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

const testPool = buytest.Pool

// opsStack is what xnum dev runs, in the test: JetStream, the emulator
// (with a clock that can be set back) and a buy worker consuming the queue;
// the environment points xnum orders at it, as the exports xnum dev prints
// would.
type opsStack struct {
	*buytest.Env
	t    *testing.T
	skew atomic.Int64 // the emulator clock's offset from now
}

func newOpsStack(t *testing.T, hook worker.Hook) *opsStack {
	t.Helper()
	s := &opsStack{t: t}
	s.Env = buytest.New(t, buytest.WithEmulator(dypls.WithClock(func() time.Time {
		return time.Now().Add(time.Duration(s.skew.Load()))
	})))
	t.Setenv(config.NATSURL, s.NATS.ClientURL())
	t.Setenv(config.NATSCreds, "")
	t.Setenv(aliyun.EnvAccessKeyID, dypls.DefaultAccessKeyID)
	t.Setenv(aliyun.EnvAccessKeySecret, dypls.DefaultAccessKeySecret)
	t.Setenv(aliyun.EnvEndpoint, s.EmuURL)
	t.Setenv(config.LogLevel, "")
	t.Setenv("USER", "ops-env")

	// The worker gives up on a buy sooner than the tests' slow emulator
	// answers, which is how a buy goes in doubt with nothing bought.
	// It stops trying to record an answer a second later, so an operator's
	// word that nothing was bought is taken two seconds after a buy began.
	wopts := []worker.Option{worker.WithBuyTimeout(time.Second), worker.WithRecordTimeout(time.Second), worker.WithRetry(1, time.Millisecond)}
	if hook != nil {
		wopts = append(wopts, worker.WithFaultHook(hook))
	}
	s.Run(s.Worker("w", wopts...))
	return s
}

// order queues one order and waits until it stops.
func (s *opsStack) order(id string, qty int) *ledger.Order {
	s.t.Helper()
	o := events.OrderRequested{OrderID: id, PoolKey: testPool, City: "北京", SpecID: provider.SpecCarrier, Quantity: qty}
	s.PublishRaw(buytest.Body(s.t, o), id)
	return s.WaitStopped([]string{id}, 20*time.Second)[id]
}

// inDoubt runs an order whose first buy meets fault f, which is cleared
// afterwards.
func (s *opsStack) inDoubt(id string, qty int, spec string) *ledger.Order {
	s.t.Helper()
	action, f, err := fault.Parse(spec)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Faults.Set(action, f)
	o := s.order(id, qty)
	s.Faults.Set(action, fault.Fault{})
	if o.Status != ledger.StatusInDoubt || o.Attempt == nil {
		s.t.Fatalf("order %s is %s, want in_doubt", id, o.Status)
	}
	return o
}

func (s *opsStack) get(id string) *ledger.Order {
	s.t.Helper()
	o, err := s.Ledger.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// buyByHand buys a number outside any order, as someone at the console
// would, the given time ago by the provider's clock.
func (s *opsStack) buyByHand(ago time.Duration) string {
	s.t.Helper()
	s.skew.Store(int64(-ago))
	defer s.skew.Store(0)
	r, err := s.Aliyun.Buy(context.Background(), provider.BuyRequest{PoolKey: testPool, City: "北京", SpecID: provider.SpecCarrier})
	if err != nil {
		s.t.Fatal(err)
	}
	return r.SecretNo
}

func (s *opsStack) sold() []string {
	var out []string
	for _, p := range s.Emu.Purchases() {
		out = append(out, p.SecretNo)
	}
	return out
}

// checkBooks: every number the emulator sold is in exactly one order of the
// ledger, or among those bought by hand, and nothing else is in the ledger.
func (s *opsStack) checkBooks(byHand ...string) {
	s.t.Helper()
	orders, err := s.Ledger.List(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	held := map[string]string{}
	for _, o := range orders {
		for _, n := range append(slices.Clone(o.Numbers), o.Excess...) {
			if other, dup := held[n.SecretNo]; dup {
				s.t.Fatalf("number %s is in orders %s and %s", n.SecretNo, other, o.OrderID)
			}
			held[n.SecretNo] = o.OrderID
		}
	}
	sold := s.sold()
	for _, no := range sold {
		if _, ok := held[no]; !ok && !slices.Contains(byHand, no) {
			s.t.Fatalf("number %s was sold but is in no order", no)
		}
	}
	if len(held)+len(byHand) != len(sold) {
		s.t.Fatalf("the ledger holds %d numbers and %d were bought by hand; the emulator sold %d", len(held), len(byHand), len(sold))
	}
}

// reportsFile writes the emulator's NumberManagementReport messages so far
// as JSON lines, as an operator would save them from MNS.
func (s *opsStack) reportsFile(name string) string {
	s.t.Helper()
	var buf bytes.Buffer
	for _, r := range s.Emu.Reports() {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	file := filepath.Join(s.t.TempDir(), name)
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return file
}

// xnum runs the command as main does and returns what it printed; no output
// may hold a secret.
func xnum(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	all := out.String() + errOut.String()
	if err != nil {
		all += err.Error()
	}
	if strings.Contains(all, dypls.DefaultAccessKeySecret) {
		t.Errorf("xnum %v printed the access key secret:\n%s", args, all)
	}
	return out.String() + errOut.String(), err
}

// refused runs a command that must fail, saying want, and change nothing
// of order id.
func (s *opsStack) refused(id, want string, args ...string) {
	s.t.Helper()
	before := s.get(id)
	sold, released := len(s.sold()), s.Emu.Calls("ReleaseSecretNo")
	out, err := xnum(s.t, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		s.t.Errorf("xnum %v: got %v, want an error saying %q\n%s", args, err, want, out)
	}
	if after := s.get(id); after.Revision != before.Revision {
		s.t.Errorf("xnum %v changed order %s (%s -> %s)", args, id, before.Status, after.Status)
	}
	if len(s.sold()) != sold || s.Emu.Calls("ReleaseSecretNo") != released {
		s.t.Errorf("xnum %v bought or released a number", args)
	}
}

func TestOrdersListAndShow(t *testing.T) {
	s := newOpsStack(t, nil)
	s.order("ord-ok", 2)
	s.inDoubt("ord-doubt", 2, "BuySecretNo:cut=1")
	time.Sleep(10 * time.Millisecond) // a later creation time than ord-doubt's
	s.order("ord-later", 1)

	out, err := xnum(t, "orders", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ORDER") || !strings.HasPrefix(lines[1], "ord-later") ||
		!strings.HasPrefix(lines[2], "ord-doubt") || !strings.HasPrefix(lines[3], "ord-ok") {
		t.Fatalf("orders list, newest first:\n%s", out)
	}
	if f := strings.Fields(lines[2]); len(f) != 7 || f[1] != "in_doubt" || f[2] != "2" || f[3] != "0" || f[6] != string(provider.ErrInDoubt) {
		t.Fatalf("orders list row of ord-doubt: %q", lines[2])
	}

	for _, tc := range []struct {
		status string
		want   []string
	}{
		{"in_doubt", []string{"ord-doubt"}},
		{"completed, in_doubt", []string{"ord-later", "ord-doubt", "ord-ok"}},
		{"failed", nil},
	} {
		out, err = xnum(t, "orders", "list", "--status", tc.status, "--json")
		var listed []ledger.Order
		if err != nil || json.Unmarshal([]byte(out), &listed) != nil {
			t.Fatalf("orders list --status %s --json: %v\n%s", tc.status, err, out)
		}
		var ids []string
		for _, o := range listed {
			ids = append(ids, o.OrderID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("orders list --status %q: %v, want %v", tc.status, ids, tc.want)
		}
	}

	out, err = xnum(t, "orders", "show", "ord-doubt")
	for _, want := range []string{"status    in_doubt", "request   pool " + testPool + ", city 北京, specId 2, quantity 2",
		"numbers   0 of 2", "in doubt  attempt 1, started", "error     InDoubt:", "event     order.in_doubt published"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("orders show lacks %q: %v\n%s", want, err, out)
		}
	}
	out, err = xnum(t, "orders", "show", "--json", "ord-ok")
	var shown ledger.Order
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.Status != ledger.StatusCompleted ||
		len(shown.Numbers) != 2 || !shown.Numbers[0].Published {
		t.Fatalf("orders show --json: %v\n%s", err, out)
	}
}

// The operator names the number the lost answer had; wrong numbers are
// refused first.
func TestOrdersReconcileSecretNo(t *testing.T) {
	s := newOpsStack(t, nil)
	done := s.order("ord-done", 1)
	early := s.buyByHand(time.Minute)
	s.inDoubt("ord-doubt", 3, "BuySecretNo:cut=1")
	sold := s.sold()
	lost := sold[len(sold)-1]

	s.refused("ord-doubt", "not in pool", "orders", "reconcile", "ord-doubt", "--secret-no", "13999999999")
	s.refused("ord-doubt", "before attempt 1 began", "orders", "reconcile", "ord-doubt", "--secret-no", early)
	s.refused("ord-doubt", "already belongs to order ord-done", "orders", "reconcile", "ord-doubt", "--secret-no", done.Numbers[0].SecretNo)
	s.refused("ord-doubt", "one kind of evidence", "orders", "reconcile", "ord-doubt", "--secret-no", lost, "--nothing-bought")
	s.refused("ord-doubt", "--why goes with", "orders", "reconcile", "ord-doubt", "--secret-no", lost, "--why", "x")
	s.refused("ord-doubt", "only a failed order", "orders", "reconcile", "ord-doubt", "--release")
	s.refused("ord-doubt", "unexpected arguments", "orders", "reconcile", "ord-doubt", "--secret-no", lost, "ord-done")

	out, err := xnum(t, "orders", "reconcile", "ord-doubt", "--secret-no", lost, "--by", "ops-alice", "--wait", "20s")
	if err != nil {
		t.Fatalf("reconcile --secret-no: %v\n%s", err, out)
	}
	o := s.get("ord-doubt")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 3 || o.Numbers[0].SecretNo != lost {
		t.Fatalf("after reconcile: %s %+v", o.Status, o.Numbers)
	}
	st := o.Settlements[0]
	if st.By != "ops-alice" || st.Outcome != ledger.OutcomeBought || st.Attempt != 1 || !strings.Contains(st.Evidence, "QuerySecretNoDetail") {
		t.Fatalf("settlement %+v", st)
	}
	if !strings.Contains(out, "status    completed") || !strings.Contains(out, "settled   attempt 1 bought by ops-alice") ||
		!strings.Contains(out, "published again for the buy workers") || strings.Count(out, "\nbought    ") != 2 {
		t.Fatalf("reconcile output:\n%s", out)
	}
	s.checkBooks(early)

	s.refused("ord-doubt", "only an order in doubt", "orders", "reconcile", "ord-doubt", "--secret-no", lost)
	s.refused("ord-done", "only an order in doubt", "orders", "reconcile", "ord-done", "--nothing-bought")
}

// The cloud's reports settle an order when they show exactly one candidate.
func TestOrdersReconcileReports(t *testing.T) {
	s := newOpsStack(t, nil)
	s.order("ord-before", 2) // its numbers are in the reports too, and settle nothing
	s.inDoubt("ord-doubt", 2, "BuySecretNo:cut=1")
	clear := s.reportsFile("clear.jsonl")

	// A number bought by hand in the same pool since: two candidates.
	byHand := s.buyByHand(0)
	s.refused("ord-doubt", "ambiguous", "orders", "reconcile", "ord-doubt", "--reports", s.reportsFile("ambiguous.jsonl"))
	s.refused("ord-doubt", "no such file", "orders", "reconcile", "ord-doubt", "--reports", filepath.Join(t.TempDir(), "none"))
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"secretNo":"13000000001","status":1}`+"\n"), 0o600)
	s.refused("ord-doubt", "needs a secretNo, status 1 or 2 and an operatingTime", "orders", "reconcile", "ord-doubt", "--reports", bad)

	// The reports saved before, fed on stdin; $USER says who.
	in, err := os.Open(clear)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	stdin := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = stdin }()
	out, err := xnum(t, "orders", "reconcile", "ord-doubt", "--reports", "-", "--wait", "20s")
	os.Stdin = stdin
	if err != nil {
		t.Fatalf("reconcile --reports -: %v\n%s", err, out)
	}
	o := s.get("ord-doubt")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 2 || o.Settlements[0].By != "ops-env" ||
		!strings.Contains(o.Settlements[0].Evidence, "NumberManagementReport") {
		t.Fatalf("after reconcile: %s %+v %+v", o.Status, o.Numbers, o.Settlements)
	}
	s.checkBooks(byHand)
}

// What the cloud's reports did, show says: a settlement by "reports", or,
// when no report came within the wait, why the attempt is left to an
// operator — who settles it from the reports stored since, once the late
// report is there.
func TestOrdersShowAutomaticSettlement(t *testing.T) {
	s := newOpsStack(t, nil)

	// With the report on time, the workers need no one.
	stop := s.runSettler(settle.WithWait(time.Minute))
	s.inDoubt("ord-cut", 1, "BuySecretNo:cut=1")
	s.DeliverReports()
	o := s.WaitCompleted([]string{"ord-cut"}, 20*time.Second)["ord-cut"]
	out, err := xnum(t, "orders", "show", "ord-cut")
	if err != nil || !strings.Contains(out, "settled   attempt 1 bought by reports at ") || !strings.Contains(out, "NumberManagementReport") {
		t.Fatalf("orders show of an order settled by the reports: %v\n%s", err, out)
	}
	stop()

	// Without, the attempt is left to an operator, and show says why.
	s.runSettler(settle.WithWait(100 * time.Millisecond))
	s.inDoubt("ord-lost", 2, "BuySecretNo:cut=1")
	sold := s.sold()
	lost := sold[len(sold)-1]
	testutil.WaitFor(t, "the attempt to be left to an operator", func() bool { return s.get("ord-lost").Unsettled != nil })
	out, err = xnum(t, "orders", "show", "ord-lost")
	for _, want := range []string{"status    in_doubt", "unsettled attempt 1, at ", "no report shows a number created in pool " + testPool,
		"left to an operator"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("orders show lacks %q: %v\n%s", want, err, out)
		}
	}
	if strings.Contains(out, "settled   ") {
		t.Fatalf("a settlement without a report:\n%s", out)
	}

	// The operator settles it from the reports stored since, once the late
	// report is there.
	s.refused("ord-lost", "no report shows", "orders", "reconcile", "ord-lost", "--stored-reports")
	s.refused("ord-lost", "one kind of evidence", "orders", "reconcile", "ord-lost", "--stored-reports", "--secret-no", lost)
	s.DeliverReports()
	out, err = xnum(t, "orders", "reconcile", "ord-lost", "--stored-reports", "--by", "ops-dan", "--wait", "20s")
	if err != nil {
		t.Fatalf("reconcile --stored-reports: %v\n%s", err, out)
	}
	if o = s.get("ord-lost"); o.Status != ledger.StatusCompleted || o.Numbers[0].SecretNo != lost || o.Settlements[0].By != "ops-dan" {
		t.Fatalf("after reconcile: %s %v %+v", o.Status, o.NumberList(), o.Settlements)
	}
	s.checkBooks()
}

// runSettler runs a settler of s until stop is called (or the test ends).
func (s *opsStack) runSettler(opts ...settle.Option) (stop func()) {
	st := s.Settler(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx, s.Queue) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	s.t.Cleanup(stop)
	return stop
}

// A buy the client gave up on, which the emulator dropped: the operator's
// word that nothing was bought, once the attempt's answer can no longer
// land, lets the order buy all it ordered.
func TestOrdersReconcileNothingBought(t *testing.T) {
	s := newOpsStack(t, nil)
	o := s.inDoubt("ord-slow", 3, "BuySecretNo:latency=2s")
	if n := len(s.sold()); n != 0 {
		t.Fatalf("the dropped call sold %d numbers", n)
	}
	s.refused("ord-slow", "may still be answered and recorded until", "orders", "reconcile", "ord-slow", "--nothing-bought", "--by", "ops-carol")
	time.Sleep(time.Until(o.Attempt.RecordedBy()) + 10*time.Millisecond)
	out, err := xnum(t, "orders", "reconcile", "ord-slow", "--nothing-bought", "--why", "no new number in the console", "--by", "ops-carol", "--wait", "20s")
	if err != nil {
		t.Fatalf("reconcile --nothing-bought: %v\n%s", err, out)
	}
	o = s.get("ord-slow")
	if o.Status != ledger.StatusCompleted || len(o.Numbers) != 3 {
		t.Fatalf("after reconcile: %s with %d numbers", o.Status, len(o.Numbers))
	}
	if st := o.Settlements[0]; st.Outcome != ledger.OutcomeNotBought || st.By != "ops-carol" || !strings.Contains(st.Evidence, "no new number in the console") {
		t.Fatalf("settlement %+v", st)
	}
	if !slices.Equal(o.NumberList(), s.sold()) {
		t.Fatalf("ledger %v, emulator sold %v", o.NumberList(), s.sold())
	}
	s.checkBooks()
}

// Numbers are given back only with --release, and only a failed order's.
func TestOrdersRelease(t *testing.T) {
	var s *opsStack
	// After an order's first number is recorded, the pool's stock runs out.
	s = newOpsStack(t, func(_ context.Context, p worker.Point, id string) error {
		if p == worker.AfterRecord && id == "ord-partial" {
			s.Faults.Set("BuySecretNo", fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"})
		}
		return nil
	})
	o := s.order("ord-partial", 3)
	s.Faults.Set("BuySecretNo", fault.Fault{})
	if o.Status != ledger.StatusFailed || len(o.Numbers) != 1 {
		t.Fatalf("ord-partial %s with %d numbers, want failed with 1", o.Status, len(o.Numbers))
	}
	s.refused("ord-partial", "only an order in doubt", "orders", "reconcile", "ord-partial", "--nothing-bought")

	out, err := xnum(t, "orders", "reconcile", "ord-partial", "--release", "--by", "ops-dave")
	no := o.Numbers[0].SecretNo
	if err != nil || !strings.Contains(out, "released  "+no) {
		t.Fatalf("reconcile --release: %v\n%s", err, out)
	}
	if _, err := s.Aliyun.NumberDetail(context.Background(), testPool, no); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("after release the pool still has %s: %v", no, err)
	}
	if r := s.get("ord-partial").Numbers[0].Released; r == nil || r.By != "ops-dave" || r.Evidence != "ReleaseSecretNo" {
		t.Fatalf("release not recorded: %+v", r)
	}
	out, err = xnum(t, "orders", "reconcile", "ord-partial", "--release")
	if err != nil || !strings.Contains(out, "nothing to release") || s.Emu.Calls("ReleaseSecretNo") != 1 {
		t.Fatalf("a second release: %v, %d calls\n%s", err, s.Emu.Calls("ReleaseSecretNo"), out)
	}
}

// A settled order that then fails keeps its numbers unless --release goes
// with the evidence.
func TestOrdersReconcileThenFail(t *testing.T) {
	s := newOpsStack(t, nil)
	// Reconciled, each order goes on to buy, but the stock has run out.
	noStock := fault.Fault{ErrorCode: "isv.NO_AVAILABLE_NUMBER"}
	s.inDoubt("ord-keep", 2, "BuySecretNo:cut=1")
	keep := s.sold()[0]
	s.Faults.Set("BuySecretNo", noStock)
	out, err := xnum(t, "orders", "reconcile", "ord-keep", "--secret-no", keep, "--wait", "20s")
	if err != nil || !strings.Contains(out, "status    failed") || !strings.Contains(out, "--release gives them back") {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	if s.Emu.Calls("ReleaseSecretNo") != 0 {
		t.Fatal("a number was released without --release")
	}
	s.Faults.Set("BuySecretNo", fault.Fault{})
	s.inDoubt("ord-give", 2, "BuySecretNo:cut=1")
	give := s.sold()[1]
	s.Faults.Set("BuySecretNo", noStock)
	// --release never goes with a settlement: the order may still go on.
	s.refused("ord-give", "a step of its own", "orders", "reconcile", "ord-give", "--secret-no", give, "--release")
	if out, err = xnum(t, "orders", "reconcile", "ord-give", "--secret-no", give, "--wait", "20s"); err != nil || !strings.Contains(out, "status    failed") {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	out, err = xnum(t, "orders", "reconcile", "ord-give", "--release")
	if err != nil || !strings.Contains(out, "released  "+give) {
		t.Fatalf("reconcile --release: %v\n%s", err, out)
	}
	if s.Emu.Calls("ReleaseSecretNo") != 1 || s.get("ord-give").Numbers[0].Released == nil || s.get("ord-keep").Numbers[0].Released != nil {
		t.Fatal("--release gave back the wrong numbers")
	}
	s.checkBooks()
}

func TestOrdersRefusals(t *testing.T) {
	s := newOpsStack(t, nil)
	s.order("ord-ok", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orders"}, "give an orders command"},
		{[]string{"orders", "frobnicate"}, "unknown orders command"},
		{[]string{"orders", "show"}, "which order"},
		{[]string{"orders", "show", "nope"}, "no order"},
		{[]string{"orders", "show", "ord-ok", "extra"}, "unexpected arguments"},
		{[]string{"orders", "list", "ord-ok"}, "unexpected argument"},
		{[]string{"orders", "list", "--status", "lost"}, "unknown status"},
		{[]string{"orders", "list", "--nats", "nats://127.0.0.1:1"}, "unavailable"},
		{[]string{"orders", "list", "--nats", "http://127.0.0.1:1"}, "NATS_URL must use the nats"},
		{[]string{"orders", "reconcile"}, "which order"},
		{[]string{"orders", "reconcile", "ord-ok"}, "exactly one of"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought", "--reports", "x"}, "one kind of evidence"},
		{[]string{"orders", "reconcile", "ord-ok", "--why", "x", "--secret-no", "1"}, "--why goes with"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought", "--json"}, "--json"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought", "--by", ""}, "say who you are"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought"}, "only an order in doubt"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought", "--release"}, "a step of its own"},
		{[]string{"orders", "reconcile", "ord-ok", "--release", "--wait", "1s"}, "--wait goes with a settlement"},
		{[]string{"orders", "reconcile", "ord-ok", "--release"}, "only a failed order"},
		{[]string{"orders", "reconcile", "nope", "--nothing-bought"}, "no order"},
		{[]string{"orders", "resume"}, "which order"},
		{[]string{"orders", "resume", "ord-ok"}, "it has ended"},
		{[]string{"orders", "resume", "nope"}, "no order"},
	} {
		s.refused("ord-ok", tc.want, tc.args...)
	}

	t.Setenv(aliyun.EnvAccessKeySecret, "")
	s.refused("ord-ok", aliyun.EnvAccessKeySecret, "orders", "reconcile", "ord-ok", "--nothing-bought")
}

// An open order nothing drives (its message is gone) is published again
// with resume, and the workers finish it; the command follows it.
func TestOrdersResume(t *testing.T) {
	s := newOpsStack(t, nil)
	o := events.OrderRequested{OrderID: "ord-stranded", PoolKey: testPool, City: "北京", SpecID: provider.SpecCarrier, Quantity: 2}
	if _, _, err := s.Ledger.CreateOrGet(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	out, err := xnum(t, "orders", "resume", "ord-stranded", "--wait", "20s")
	if err != nil || !strings.Contains(out, "resumed   ord-stranded") || !strings.Contains(out, "status    completed") ||
		strings.Count(out, "\nbought    ") != 2 {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	s.checkBooks()

	s.inDoubt("ord-doubt", 1, "BuySecretNo:cut=1")
	s.refused("ord-doubt", "settle its attempt in doubt first", "orders", "resume", "ord-doubt")
}
