package devstack

import (
	"fmt"
	"sync"
	"testing"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// In the FC shape there is no consumer: the intake wakes the worker function
// up through the emulator's FC, which invokes it on its own port, and every
// order of a burst is bought exactly once in fewer wake-ups than orders.
func TestFCShape(t *testing.T) {
	s := startWith(t, Config{FC: true})
	if len(s.Buy.Background) != 0 {
		t.Fatal("the FC shape runs a consumer")
	}
	if s.WorkerURL == "" || s.WorkerURL == s.HTTPURL {
		t.Fatalf("worker at %q, routes at %q: want a function of its own", s.WorkerURL, s.HTTPURL)
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := post(t, s.HTTPURL+"/orders", fmt.Sprintf(`{"orderId":"fc-%d","poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":1}`, i))
			if code != 202 {
				t.Errorf("POST /orders: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		waitCompleted(t, s, fmt.Sprint("fc-", i))
	}
	var invs []fc.Invocation
	testutil.WaitFor(t, "the wake-ups to end", func() bool {
		invs = s.Emulator.FC().Invocations()
		for _, inv := range invs {
			if !inv.Done {
				return false
			}
		}
		return true
	})
	carried := 0
	for _, inv := range invs {
		p, ok := wakeup.Decode(inv.Payload)
		if !ok || !inv.Succeeded {
			t.Fatalf("an invocation that is no wake-up, or failed: %+v", inv)
		}
		carried += len(p.Orders)
	}
	if carried != n || len(invs) >= n {
		t.Fatalf("%d wake-ups carried %d orders; want %d orders in fewer", len(invs), carried, n)
	}
	if got := len(s.Emulator.Dypls().Purchases()); got != n {
		t.Fatalf("%d numbers bought for %d orders of 1", got, n)
	}
}
