package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// TestChaos runs the buy function as the separate OS processes a plain
// deployment runs — an intake and two long-lived consumers — against one
// NATS server and the Dyplsapi emulator. While orders flow in over HTTP, a
// consumer is killed with SIGKILL at random and started again. At the end
// every order has ended (completed, failed, or in doubt with its event), no
// number is in two orders, and the numbers the emulator sold are the numbers
// the orders record plus at most one per order in doubt.
//
// It runs for a few seconds of orders by default; XNUM_SOAK=1 runs a minute.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the buy binary as processes")
	}
	flow, killEvery, stock := 6*time.Second, 700*time.Millisecond, 1000
	if buytest.Soak() {
		flow, killEvery, stock = time.Minute, 500*time.Millisecond, 9000
	}
	bin := buildBinary(t)
	// Enough stock that no order fails for want of numbers.
	e := buytest.New(t, buytest.WithNumbers(buytest.Hangzhou(stock)...),
		buytest.WithQueue(queue.WithAckWait(2*time.Second), queue.WithMaxDeliver(10)))
	// A buy takes a while, so a kill often lands in the middle of one.
	e.Faults.Set("BuySecretNo", fault.Fault{Latency: 40 * time.Millisecond})
	common := []string{
		config.NATSURL + "=" + e.NATS.ClientURL(),
		aliyun.EnvAccessKeyID + "=" + dypls.DefaultAccessKeyID,
		aliyun.EnvAccessKeySecret + "=" + dypls.DefaultAccessKeySecret,
		aliyun.EnvEndpoint + "=" + e.EmuURL,
		buy.EnvQPS + "=0",
		config.LogLevel + "=warn",
	}
	intakeAddr := freeAddr(t)
	intake := newProc(t, "intake", bin, append(slices.Clone(common), buy.EnvRole+"=intake", config.HTTPAddr+"="+intakeAddr))
	intake.start()
	workers := make([]*proc, 2)
	for i := range workers {
		workers[i] = newProc(t, fmt.Sprintf("worker-%d", i), bin, append(slices.Clone(common),
			buy.EnvRole+"=worker", buy.EnvConsumer+"=true", config.HTTPAddr+"=127.0.0.1:0",
			buy.EnvLease+"=2s", buy.EnvSweepEvery+"=1s", buy.EnvSweepIdle+"=3s"))
		workers[i].start()
	}
	base := "http://" + intakeAddr
	waitServing(t, base)

	// Kill a consumer at random while orders flow, and start it again.
	rng, orderRng := rand.New(rand.NewPCG(8, 27)), rand.New(rand.NewPCG(9, 28))
	stopKilling := make(chan struct{})
	killed := make(chan int)
	go func() {
		kills := 0
		defer func() { killed <- kills }()
		for {
			select {
			case <-stopKilling:
				return
			case <-time.After(killEvery/2 + time.Duration(rng.Int64N(int64(killEvery)))):
			}
			w := workers[rng.IntN(len(workers))]
			w.kill()
			kills++
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			w.start()
		}
	}()

	var ids []string
	wanted := 0
	client := &http.Client{Timeout: 10 * time.Second}
	for end := time.Now().Add(flow); time.Now().Before(end); {
		id := fmt.Sprintf("chaos-%04d", len(ids))
		qty := 1 + orderRng.IntN(3)
		body := fmt.Sprintf(`{"poolKey":%q,"city":"杭州","specId":2,"quantity":%d}`, buytest.Pool, qty)
		req, _ := http.NewRequest("POST", base+"/orders", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		var got struct {
			OrderID string `json:"orderId"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if (resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusServiceUnavailable) || got.OrderID != id {
			t.Fatalf("POST %s: %d %+v", id, resp.StatusCode, got)
		}
		ids, wanted = append(ids, id), wanted+qty
		time.Sleep(25 * time.Millisecond)
	}
	close(stopKilling)
	kills := <-killed
	for _, w := range workers {
		w.ensure()
	}

	orders := e.WaitStopped(ids, 2*time.Minute)
	sold, recorded, inDoubt := e.Audit(orders)
	counts := map[ledger.Status]int{}
	excess := 0
	for _, o := range orders {
		counts[o.Status]++
		excess += len(o.Excess)
	}
	if counts[ledger.StatusCompleted]+counts[ledger.StatusFailed]+counts[ledger.StatusInDoubt] != len(ids) {
		t.Fatalf("orders: %v of %d", counts, len(ids))
	}
	t.Logf("chaos: %d orders (%d numbers) over %v, %d consumer kills; completed %d, failed %d, in doubt %d; sold %d, recorded %d (%d excess); sold - recorded = %d <= %d in doubt",
		len(ids), wanted, flow, kills, counts[ledger.StatusCompleted], counts[ledger.StatusFailed], counts[ledger.StatusInDoubt],
		sold, recorded, excess, sold-recorded, inDoubt)
	if kills == 0 {
		t.Fatal("no consumer was killed")
	}
	if counts[ledger.StatusFailed] > 0 {
		t.Fatalf("%d orders failed; the stock was meant to be enough", counts[ledger.StatusFailed])
	}
}

// buildBinary builds the buy function's binary once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "buy")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is one process of the buy binary, which the test kills and starts
// again; its output is kept for when the test fails.
type proc struct {
	t    *testing.T
	name string
	bin  string
	env  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
	runs int
}

// newProc makes a process of bin with env, stopped (SIGTERM) when the test
// ends; its output is logged if the test failed.
func newProc(t *testing.T, name, bin string, env []string) *proc {
	p := &proc{t: t, name: name, bin: bin, env: env}
	t.Cleanup(func() {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd != nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s's output (%d runs):\n%s", p.name, p.runs, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

// start starts the process.
func (p *proc) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	w := &syncWriter{mu: &p.mu, w: &p.out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.runs++
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

// kill ends the process at once, as a crash would.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// ensure starts the process again if it is not running.
func (p *proc) ensure() {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		p.start()
	default:
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitServing waits until base answers HTTP.
func waitServing(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(base + "/orders/none"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s does not answer", base)
}
