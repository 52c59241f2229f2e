package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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
	// base is the baseline a function's figures are held against.
	base *target
}

// helloProbe is the baselines' real answer.
var helloProbe = probe{Method: http.MethodGet, Path: "/", Status: http.StatusOK}

// launch execs t and waits for its first real answer; the caller stops it.
func launch(ctx context.Context, t target) (*proc, error) {
	p, err := start(t.bin, t.env)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, p, t.probe, 10*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return p, nil
}

// coldStart execs t and returns the time from exec to the end of its first
// real answer, and what the process used to give it.
func coldStart(ctx context.Context, t target) (time.Duration, usage, error) {
	t0 := time.Now()
	p, err := launch(ctx, t)
	if err != nil {
		return 0, usage{}, err
	}
	wall := time.Since(t0)
	u, err := p.kill()
	return wall, u, err
}

// starts are the cold starts of one binary.
type starts struct {
	wall, cpu []time.Duration
	faults    []int64
	err       error
}

func (s starts) String() string {
	f := slices.Clone(s.faults)
	slices.Sort(f)
	mf := int64(0)
	if len(f) > 0 {
		mf = f[len(f)/2]
	}
	return fmt.Sprintf("%v to the first answer, %v of CPU, %d page faults (medians of %d)", median(s.wall), median(s.cpu), mf, len(s.wall))
}

// coldStartRows measures each function and its baseline reps times each,
// in turns (every binary once, then again), so drift in the machine's load
// touches all alike. One discarded start of each comes first, to page the
// binaries in.
func coldStartRows(ctx context.Context, fns []target, reps int) []Row {
	var all []target
	index := map[string]int{}
	for _, t := range append(slices.Clone(fns), bases(fns)...) {
		if _, ok := index[t.name]; !ok {
			index[t.name] = len(all)
			all = append(all, t)
		}
	}
	got := make([]starts, len(all))
	for rep := -1; rep < reps; rep++ {
		for i, t := range all {
			if got[i].err != nil {
				continue
			}
			wall, u, err := coldStart(ctx, t)
			switch {
			case err != nil:
				got[i].err = err
			case rep >= 0:
				got[i].wall = append(got[i].wall, wall)
				got[i].cpu = append(got[i].cpu, u.cpu)
				got[i].faults = append(got[i].faults, u.faults)
			}
		}
	}
	for i, t := range all {
		logf("cold start %s: %v", t.name, got[i])
	}
	var rows []Row
	for _, t := range fns {
		fn, base := got[index[t.name]], got[index[t.base.name]]
		rows = append(rows, Row{
			Figure:     fmt.Sprintf("cold start: %s, exec to first answer (median of %d)", t.name, reps),
			Unit:       "ms",
			Measured:   ms(median(fn.wall)),
			Baseline:   ms(median(base.wall)),
			BaselineOf: t.base.name,
			Goals:      []Goal{RatioAtMost(1.5)},
			Err:        firstErr(fn.err, base.err),
		})
	}
	return rows
}

// bases are the baselines of fns.
func bases(fns []target) []target {
	var out []target
	for _, t := range fns {
		out = append(out, *t.base)
	}
	return out
}

// peakRSSRows starts each binary, loads it with rounds of n concurrent
// requests of its probe, and reads its peak RSS; its baseline gets the same.
func peakRSSRows(ctx context.Context, fns []target, n, rounds int) []Row {
	type result struct {
		rss int64
		err error
	}
	measured := map[string]result{}
	measure := func(t target) result {
		if r, ok := measured[t.name]; ok {
			return r
		}
		rss, err := peakRSS(ctx, t, n, rounds)
		logf("peak RSS %s: %.1f MB (%v)", t.name, mb(rss), err)
		measured[t.name] = result{rss, err}
		return measured[t.name]
	}
	var rows []Row
	for _, t := range fns {
		base, fn := measure(*t.base), measure(t)
		rows = append(rows, Row{
			Figure:     fmt.Sprintf("peak RSS: %s under %d concurrent requests", t.name, n),
			Unit:       "MB",
			Measured:   mb(fn.rss),
			Baseline:   mb(base.rss),
			BaselineOf: t.base.name,
			Goals:      []Goal{AtMost(40, "MB")},
			Err:        firstErr(fn.err, base.err),
		})
	}
	return rows
}

func peakRSS(ctx context.Context, t target, n, rounds int) (int64, error) {
	p, err := launch(ctx, t)
	if err != nil {
		return 0, err
	}
	defer p.stop()
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

// sizeRows reports the binaries' sizes next to their baselines'.
func sizeRows(fns []target) []Row {
	var rows []Row
	for _, t := range fns {
		size, err := fileSize(t.bin)
		base, baseErr := fileSize(t.base.bin)
		rows = append(rows, Row{
			Figure:     fmt.Sprintf("binary size: %s (%s)", t.name, t.build),
			Unit:       "MB",
			Measured:   mb(size),
			Baseline:   mb(base),
			BaselineOf: t.base.name,
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
