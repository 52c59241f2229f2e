package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// rate is what a closed-loop load of some concurrency achieved.
type rate struct {
	ok, failed int64
	elapsed    time.Duration
	firstErr   error
}

func (r rate) perSecond() float64 { return float64(r.ok) / r.elapsed.Seconds() }

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

// alternate measures a and b in turns, rounds times each for d/rounds, after
// a short warm-up of both, and sums each side's turns.
func alternate(ctx context.Context, conc int, d time.Duration, rounds int, a, b func(context.Context) error) (ra, rb rate) {
	load(ctx, conc, d/10, a)
	load(ctx, conc, d/10, b)
	add := func(sum *rate, r rate) {
		sum.ok += r.ok
		sum.failed += r.failed
		sum.elapsed += r.elapsed
		if sum.firstErr == nil {
			sum.firstErr = r.firstErr
		}
	}
	for range rounds {
		add(&ra, load(ctx, conc, d/time.Duration(rounds), a))
		add(&rb, load(ctx, conc, d/time.Duration(rounds), b))
	}
	return ra, rb
}

// remainThroughputRow measures GET /remain through the remain function's
// binary against the bare aliyun client's Remain on the same emulator, at
// the same concurrency.
func remainThroughputRow(ctx context.Context, c *cloud, fn target, conc int, d time.Duration) Row {
	row := Row{
		Figure:     fmt.Sprintf("remain throughput: GET /remain through the function, %d concurrent", conc),
		Unit:       "req/s",
		BaselineOf: "aliyun.Client.Remain",
		Goals:      []Goal{RatioAtLeast(0.8)},
	}
	client, err := c.aliyun()
	if err != nil {
		row.Err = err
		return row
	}
	defer client.CloseIdleConnections()
	p, err := start(fn.bin, fn.env)
	if err != nil {
		row.Err = err
		return row
	}
	defer p.stop()
	if err := waitReady(ctx, p, fn.probe, 10*time.Second); err != nil {
		row.Err = err
		return row
	}
	q := provider.RemainQuery{City: "杭州", SpecID: provider.SpecCarrier}
	bare := func(ctx context.Context) error {
		_, err := client.Remain(ctx, q)
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, Proxy: nil}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	viaFn := func(ctx context.Context) error {
		status, body, err := fn.probe.send(ctx, hc, p.URL)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET /remain answered %d: %s", status, body)
		}
		return err
	}
	rf, rb := alternate(ctx, conc, d, 2, viaFn, bare)
	logf("remain throughput: function %.0f req/s (%d failed), bare client %.0f req/s (%d failed)", rf.perSecond(), rf.failed, rb.perSecond(), rb.failed)
	row.Measured, row.Baseline = rf.perSecond(), rb.perSecond()
	if rf.failed+rb.failed > 0 {
		row.Err = fmt.Errorf("%d calls through the function and %d bare calls failed, first: %v", rf.failed, rb.failed, firstErr(rf.firstErr, rb.firstErr))
	}
	return row
}
