package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// rate is what a closed-loop load of some concurrency achieved.
type rate struct {
	ok, failed int64
	elapsed    time.Duration
	cpu        time.Duration // of the bench process and the binaries the load runs through
	firstErr   error
}

func (r rate) perSecond() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// cpuPerCall is the CPU time all processes involved spent per successful
// call: what bounds the rate when the CPU is the bottleneck, and less
// disturbed by other load on the machine than the rate itself.
func (r rate) cpuPerCall() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return (r.cpu / time.Duration(r.ok)).Round(time.Microsecond)
}

// loadSpec is one side of a comparison: the call, and the binaries it runs
// through besides the bench process.
type loadSpec struct {
	call  func(context.Context) error
	procs []*proc
}

func (l loadSpec) cpu() time.Duration {
	t := cpuTime()
	for _, p := range l.procs {
		t += p.cpuTime()
	}
	return t
}

// load runs call from conc goroutines, each calling again as soon as its
// previous call returns, for d.
func load(ctx context.Context, conc int, d time.Duration, call func(context.Context) error) rate {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := call(context.WithoutCancel(ctx))
				switch {
				case err == nil:
					ok.Add(1)
				default:
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return rate{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(t0), firstErr: first}
}

// alternate measures each load in turns, rounds times each for d/rounds,
// after a short warm-up of each, and returns each load's sum over the
// rounds and its rate in each round.
func alternate(ctx context.Context, conc int, d time.Duration, rounds int, loads ...loadSpec) ([]rate, [][]rate) {
	for _, l := range loads {
		load(ctx, conc, d/10, l.call)
	}
	add := func(sum *rate, r rate) {
		sum.ok += r.ok
		sum.failed += r.failed
		sum.elapsed += r.elapsed
		sum.cpu += r.cpu
		if sum.firstErr == nil {
			sum.firstErr = r.firstErr
		}
	}
	sums := make([]rate, len(loads))
	each := make([][]rate, len(loads))
	for range rounds {
		for i, l := range loads {
			cpu0 := l.cpu()
			r := load(ctx, conc, d/time.Duration(rounds), l.call)
			r.cpu = l.cpu() - cpu0
			add(&sums[i], r)
			each[i] = append(each[i], r)
		}
	}
	return sums, each
}

// cpuRounds is how many turns each side of the remain comparison gets.
const cpuRounds = 5

// perRound lists a's CPU per call less b's (when given), round by round.
func perRound(a, b []rate) []time.Duration {
	var out []time.Duration
	for i := range a {
		d := a[i].cpuPerCall()
		if b != nil {
			d -= b[i].cpuPerCall()
		}
		out = append(out, d)
	}
	return out
}

// extraCPU is the median over rounds of the CPU a call through the function
// costs beyond the bare call, and of the bare binary's call: a round's three
// loads run back to back, so a change in the machine's other load between
// rounds moves a round's figures together and the medians keep to the
// typical round.
func extraCPU(fn, bare, hello []rate) (extra, base time.Duration) {
	var extras, bases []time.Duration
	for i := range fn {
		extras = append(extras, fn[i].cpuPerCall()-bare[i].cpuPerCall())
		bases = append(bases, hello[i].cpuPerCall())
	}
	return median(extras), median(bases)
}

// remainThroughputRows measures GET /remain through the remain function's
// binary against the bare aliyun client's Remain on the same emulator, at
// the same concurrency, and GET / on the bare net/http binary. With the
// emulator answering at once every side is CPU-bound on the shared cores, so
// the goal is on CPU time per call: what the function's path costs beyond
// the bare call (one more HTTP exchange, and the function's own work), held
// against what the bare binary's whole exchange costs. The throughput rows
// follow from it and are for scale; with a provider latency the throughput
// row has a goal of its own.
func remainThroughputRows(ctx context.Context, c *cloud, fn, hello target, conc int, d, latency time.Duration) []Row {
	figure := fmt.Sprintf("remain throughput: GET /remain through the function, %d concurrent", conc)
	if latency > 0 {
		figure += fmt.Sprintf(", provider latency %v", latency)
		c.Faults().Set("QuerySecretNoRemain", fault.Fault{Latency: latency})
		defer c.Faults().Set("QuerySecretNoRemain", fault.Fault{})
	}
	row := Row{
		Figure:     figure,
		Unit:       "req/s",
		BaselineOf: "aliyun.Client.Remain",
	}
	if latency > 0 {
		row.Goals = []Goal{RatioAtLeast(0.8)}
	}
	cpuRow := Row{
		Figure:     fmt.Sprintf("remain CPU: a GET /remain beyond the bare Remain call, %d concurrent (median of %d rounds)", conc, cpuRounds),
		Unit:       "µs",
		BaselineOf: "GET / on the net/http hello binary",
		Goals:      []Goal{RatioAtMost(1.5)},
	}
	helloRow := Row{Figure: fmt.Sprintf("remain throughput, for scale: GET / on the net/http hello binary, %d concurrent", conc), Unit: "req/s"}
	fail := func(err error) []Row {
		row.Err, cpuRow.Err, helloRow.Err = err, err, err
		if latency > 0 {
			return []Row{row}
		}
		return []Row{cpuRow, row, helloRow}
	}
	client, err := c.aliyun()
	if err != nil {
		return fail(err)
	}
	defer client.CloseIdleConnections()
	var procs [2]*proc
	for i, t := range []target{fn, hello} {
		p, err := launch(ctx, t)
		if err != nil {
			return fail(err)
		}
		defer p.stop()
		procs[i] = p
	}
	bare := func(ctx context.Context) error {
		_, err := client.Remain(ctx, remainQuery)
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, Proxy: nil}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(t target, p *proc) func(context.Context) error {
		return func(ctx context.Context) error {
			status, body, err := t.probe.send(ctx, hc, p.URL)
			if err == nil && status != t.probe.Status {
				err = fmt.Errorf("%s %s answered %d: %s", t.probe.Method, t.probe.Path, status, body)
			}
			return err
		}
	}
	rs, rounds := alternate(ctx, conc, d, cpuRounds,
		loadSpec{call: get(fn, procs[0]), procs: procs[:1]},
		loadSpec{call: bare},
		loadSpec{call: get(hello, procs[1]), procs: procs[1:]})
	rf, rb, rh := rs[0], rs[1], rs[2]
	logf("remain throughput: function %.0f req/s, %v CPU each (%d failed); bare client %.0f req/s, %v CPU each (%d failed); hello %.0f req/s, %v CPU each",
		rf.perSecond(), rf.cpuPerCall(), rf.failed, rb.perSecond(), rb.cpuPerCall(), rb.failed, rh.perSecond(), rh.cpuPerCall())
	row.Measured, row.Baseline = rf.perSecond(), rb.perSecond()
	helloRow.Measured = rh.perSecond()
	extra, base := extraCPU(rounds[0], rounds[1], rounds[2])
	cpuRow.Measured, cpuRow.Baseline = us(extra), us(base)
	logf("remain CPU beyond the bare call, per round: %v; hello per round: %v", perRound(rounds[0], rounds[1]), perRound(rounds[2], nil))
	if n := rf.failed + rb.failed + rh.failed; n > 0 {
		err := fmt.Errorf("%d calls failed, first: %v", n, firstErr(rf.firstErr, rb.firstErr, rh.firstErr))
		row.Err, cpuRow.Err, helloRow.Err = err, err, err
	}
	if latency > 0 {
		return []Row{row} // CPU is the bound only when nothing waits
	}
	return []Row{cpuRow, row, helloRow}
}
