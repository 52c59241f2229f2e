package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/gobuild"
)

// target is a binary to start and the request that proves it serves.
type target struct {
	name  string
	bin   string
	env   []string
	probe probe
	build gobuild.Spec
}

// helloProbe is the baseline's real answer.
var helloProbe = probe{Method: http.MethodGet, Path: "/", Status: http.StatusOK}

// coldStart execs t and returns the time from exec to the end of its first
// real answer.
func coldStart(ctx context.Context, t target) (time.Duration, error) {
	t0 := time.Now()
	p, err := start(t.bin, t.env)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	if err := waitReady(ctx, p, t.probe, 10*time.Second); err != nil {
		return 0, fmt.Errorf("%s: %w", t.name, err)
	}
	return time.Since(t0), nil
}

// coldStartRows measures each function against the baseline, reps times
// each, in turns (baseline, then every function, then again), so drift in
// the machine's load touches all alike. One discarded start of each comes
// first, to page the binaries in.
func coldStartRows(ctx context.Context, baseline target, fns []target, reps int) []Row {
	all := append([]target{baseline}, fns...)
	times := make([][]time.Duration, len(all))
	errs := make([]error, len(all))
	for rep := -1; rep < reps; rep++ {
		for i, t := range all {
			if errs[i] != nil {
				continue
			}
			d, err := coldStart(ctx, t)
			if err != nil {
				errs[i] = err
				continue
			}
			if rep >= 0 {
				times[i] = append(times[i], d)
			}
		}
	}
	base := median(times[0])
	logf("cold start %s: %v (median of %v)", baseline.name, base, times[0])
	var rows []Row
	for i, t := range fns {
		r := Row{
			Figure:     fmt.Sprintf("cold start: %s, exec to first answer (median of %d)", t.name, reps),
			Unit:       "ms",
			Measured:   ms(median(times[i+1])),
			Baseline:   ms(base),
			BaselineOf: "net/http hello",
			Goals:      []Goal{RatioAtMost(1.5)},
			Err:        firstErr(errs[i+1], errs[0]),
		}
		logf("cold start %s: %v (median of %v)", t.name, median(times[i+1]), times[i+1])
		rows = append(rows, r)
	}
	return rows
}

// peakRSSRows starts each binary, loads it with rounds of n concurrent
// requests of its probe, and reads its peak RSS; the baseline gets the same.
func peakRSSRows(ctx context.Context, baseline target, fns []target, n, rounds int) []Row {
	base, baseErr := peakRSS(ctx, baseline, n, rounds)
	logf("peak RSS %s: %.1f MB", baseline.name, mb(base))
	var rows []Row
	for _, t := range fns {
		rss, err := peakRSS(ctx, t, n, rounds)
		logf("peak RSS %s: %.1f MB (%v)", t.name, mb(rss), err)
		rows = append(rows, Row{
			Figure:     fmt.Sprintf("peak RSS: %s under %d concurrent requests", t.name, n),
			Unit:       "MB",
			Measured:   mb(rss),
			Baseline:   mb(base),
			BaselineOf: "net/http hello",
			Goals:      []Goal{AtMost(40, "MB")},
			Err:        firstErr(err, baseErr),
		})
	}
	return rows
}

func peakRSS(ctx context.Context, t target, n, rounds int) (int64, error) {
	p, err := start(t.bin, t.env)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	if err := waitReady(ctx, p, t.probe, 10*time.Second); err != nil {
		return 0, fmt.Errorf("%s: %w", t.name, err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, Proxy: nil}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				status, body, err := t.probe.send(ctx, client, p.URL)
				if err == nil && status != t.probe.Status {
					err = fmt.Errorf("%s %s answered %d: %s", t.probe.Method, t.probe.Path, status, body)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, fmt.Errorf("%s under load: %w", t.name, err)
		}
	}
	return p.peakRSS()
}

// sizeRows reports the binaries' sizes next to the baseline's.
func sizeRows(baseline target, fns []target) []Row {
	base, baseErr := fileSize(baseline.bin)
	var rows []Row
	for _, t := range fns {
		size, err := fileSize(t.bin)
		rows = append(rows, Row{
			Figure:     fmt.Sprintf("binary size: %s (%s)", t.name, t.build),
			Unit:       "MB",
			Measured:   mb(size),
			Baseline:   mb(base),
			BaselineOf: "net/http hello",
			Goals:      []Goal{AtMost(15, "MB")},
			Err:        firstErr(err, baseErr),
		})
	}
	return rows
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
