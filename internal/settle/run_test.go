package settle_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/worker"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// started waits until s.Run has subscribed and made its first pass.
func started(t *testing.T, e *buytest.Env) {
	t.Helper()
	testutil.WaitFor(t, "the settler to start", func() bool {
		return strings.Contains(e.Logs.String(), "settling attempts in doubt from the cloud's reports")
	})
}

// never is a pass and rescan interval no test outlives: what settles
// within a test was woken.
const never = time.Hour

// A report that arrives after its attempt went in doubt wakes Run, which
// settles the attempt.
func TestRunWokenByAReport(t *testing.T) {
	e := buytest.New(t)
	e.Run(e.Worker("w", worker.WithBuyTimeout(time.Second)))
	s := e.Settler(settle.WithEvery(never, never))
	e.RunSettler(s)
	started(t, e)

	e.Faults.Set("BuySecretNo", fault.Fault{CutRate: 1})
	e.PublishRaw(buytest.Body(t, buytest.Order("o", 1)), "o")
	if o := e.WaitStopped([]string{"o"}, 20*time.Second)["o"]; o.Status != ledger.StatusInDoubt {
		t.Fatalf("order %s", o.Status)
	}
	e.Faults.Set("BuySecretNo", fault.Fault{})
	waitPasses(t, s, 1) // it looked, and found no report yet
	e.DeliverReports()
	o := e.WaitCompleted([]string{"o"}, 20*time.Second)["o"]
	if len(o.Settlements) != 1 || o.Settlements[0].By != settle.By {
		t.Fatalf("settlements %+v", o.Settlements)
	}
	e.Audit(map[string]*ledger.Order{"o": o})
}

// A report that arrived while its attempt was still in flight (the worker
// was killed mid-buy, its lease not yet lapsed) is used when the order goes
// in doubt: the order.in_doubt event wakes Run.
func TestRunWokenByInDoubt(t *testing.T) {
	e := buytest.New(t)
	s := e.Settler(settle.WithEvery(never, never))
	e.RunSettler(s)
	started(t, e)

	hook, fired := buytest.CrashAt(worker.AfterBuy, "o", 1)
	killed := e.Worker("killed", worker.WithFaultHook(hook), worker.WithLease(300*time.Millisecond))
	if err := killed.HandleOrder(buytest.Ctx(t), buytest.Body(t, buytest.Order("o", 2))); !errors.Is(err, buytest.ErrCrash) || !fired() {
		t.Fatalf("HandleOrder = %v", err)
	}
	e.DeliverReports() // the order is processing, its attempt open
	e.Run(e.Worker("sweeping", worker.WithSweep(100*time.Millisecond, 300*time.Millisecond)))
	o := e.WaitCompleted([]string{"o"}, 20*time.Second)["o"]
	if len(o.Settlements) != 1 || o.Settlements[0].By != settle.By || o.Settlements[0].SecretNo != e.Emu.Purchases()[0].SecretNo {
		t.Fatalf("settlements %+v", o.Settlements)
	}
	e.Audit(map[string]*ledger.Order{"o": o})
}

func waitPasses(t *testing.T, s *settle.Settler, n int64) {
	t.Helper()
	testutil.WaitFor(t, "the settler's passes", func() bool { return s.Stats().Passes >= n })
}
