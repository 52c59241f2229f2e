package main

import (
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// fcPair runs the binary twice as FC runs xnum-buy and xnum-buy-worker: an
// intake that wakes the worker function up through the emulator's FC, and
// the worker, registered there. Neither runs a consumer. It returns the
// intake's base URL, the worker's, and the intake's log.
func fcPair(t *testing.T, emu *emulatortest.Server, e testutil.Env, workerName string) (string, string, *testutil.SyncBuffer) {
	t.Helper()
	worker := maps.Clone(e)
	onFC(worker, "xnum-buy-worker", "worker")
	workerURL := bin.Start(t, worker, io.Discard)
	if err := emu.FC().Register(fc.Function{Name: "xnum-buy-worker", URL: workerURL, Retries: 2}); err != nil {
		t.Fatal(err)
	}

	in := e.With(config.BuyWorkerFunction, workerName, config.FCEndpoint, emu.URL)
	onFC(in, "xnum-buy", "intake")
	logs := &testutil.SyncBuffer{}
	return bin.Start(t, in, logs), workerURL, logs
}

// An order POSTed to the intake is bought at once by the worker function
// FC runs for it, with no timer; the worker's timer drain meeting the same
// queued message later buys nothing more. The wake-up is signed with the
// role's credentials of the POST (FC's x-fc-* headers), the environment's
// having expired.
func TestFCWakeup(t *testing.T) {
	emu, e := stack(t, emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	e[aliyun.EnvAccessKeyID], e[aliyun.EnvAccessKeySecret] = "STS.old", "old-secret"
	intakeURL, workerURL, logs := fcPair(t, emu, e, "xnum-buy-worker")
	sts := []string{"x-fc-access-key-id", "STS.role", "x-fc-access-key-secret", "role-secret", "x-fc-security-token", "role-token"}

	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-woken", 2), sts...); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, intakeURL, "o-woken", "completed")
	invs := invocations(t, emu)
	if len(invs) != 1 || !invs[0].Succeeded {
		t.Fatalf("invocations %+v", invs)
	}
	if p, ok := wakeup.Decode(invs[0].Payload); !ok || len(p.Orders) != 1 || !strings.Contains(string(p.Orders[0]), "o-woken") {
		t.Fatalf("the wake-up carried %s", invs[0].Payload)
	}

	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	if resp, body := testutil.Do(t, "POST", workerURL+"/invoke", timer, sts...); resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	if n := len(emu.Dypls().Purchases()); n != 2 {
		t.Fatalf("%d numbers bought for an order of 2", n)
	}
	if strings.Contains(logs.String(), "not woken") {
		t.Fatalf("a wake-up failed:\n%s", logs)
	}
}

// A burst of orders costs fewer wake-ups than orders, and every order
// completes.
func TestFCWakeupBurst(t *testing.T) {
	emu, e := stack(t)
	intakeURL, _, _ := fcPair(t, emu, e, "xnum-buy-worker")
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order(fmt.Sprint("o-burst-", i), 1)); resp.StatusCode != 202 {
				t.Errorf("POST /orders: %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		waitOrder(t, intakeURL, fmt.Sprint("o-burst-", i), "completed")
	}
	orders := 0
	invs := invocations(t, emu)
	for _, inv := range invs {
		p, _ := wakeup.Decode(inv.Payload)
		orders += len(p.Orders)
	}
	t.Logf("%d orders in %d wake-ups", n, len(invs))
	if orders != n || len(invs) >= n {
		t.Fatalf("%d wake-ups carried %d orders, want %d orders in fewer wake-ups", len(invs), orders, n)
	}
	if got := len(emu.Dypls().Purchases()); got != n {
		t.Fatalf("%d numbers bought for %d orders of 1", got, n)
	}
}

// A wake-up that fails (here: no such function) does not fail the order:
// the POST is accepted, the failure logged once with its reason, and the
// worker's timer drain buys it.
func TestFCWakeupFailureLeavesTheOrderToTheTimer(t *testing.T) {
	emu, e := stack(t)
	intakeURL, workerURL, logs := fcPair(t, emu, e, "not-deployed")
	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-unwoken", 1)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	if got := strings.Count(logs.String(), "worker not woken"); got != 1 || !strings.Contains(logs.String(), "FunctionNotFound") {
		t.Fatalf("%d failure lines, want 1 naming FunctionNotFound:\n%s", got, logs)
	}
	if _, o := testutil.Do(t, "GET", intakeURL+"/orders/o-unwoken", ""); !strings.Contains(string(o), `"status":"accepted"`) {
		t.Fatalf("the order before the timer: %s", o)
	}
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	if resp, body := testutil.Do(t, "POST", workerURL+"/invoke", timer); resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, intakeURL, "o-unwoken", "completed")
}

// invocations waits until every invocation FC took has ended, and returns
// them.
func invocations(t *testing.T, emu *emulatortest.Server) []fc.Invocation {
	t.Helper()
	var invs []fc.Invocation
	testutil.WaitFor(t, "FC's invocations to end", func() bool {
		invs = emu.FC().Invocations()
		for _, inv := range invs {
			if !inv.Done {
				return false
			}
		}
		return true
	})
	return invs
}
