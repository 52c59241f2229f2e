// Command bench measures xnum against the limits that bound it and prints
// one Markdown table. Every ratio compares a figure with a baseline built and
// run beside it in the same run, on the same machine:
//
//   - cold start: each function binary, built as s.yaml builds it (its
//     go build line is read from s.yaml; GOOS and GOARCH stay the host's), from exec
//     to its first real answer (remain and pools through the emulator, buy's
//     intake a POST /orders accepted) vs a bare net/http binary (remain,
//     pools) or one that also connects to the NATS server and makes one
//     JetStream API call before it answers (buy);
//   - remain CPU: the CPU time a GET /remain through the function's binary
//     costs beyond the bare aliyun client's Remain on the same emulator and
//     concurrency, vs the CPU time of a GET / on the bare net/http binary;
//     and the throughput of both, with the emulator answering at once and
//     with a latency like Dyplsapi's;
//   - pipeline: orders/s of quantity 1, order.requested published to
//     order.completed observed;
//   - provider limit: numbers bought per second through the worker with the
//     emulator limiting BuySecretNo to a QPS and adding 20 ms, vs that QPS,
//     and the throttling answers the emulator gave;
//   - peak RSS of each function under 100 concurrent requests and binary
//     sizes, next to the bare binary's;
//   - order latency: POST /orders to order.completed in the FC shape (the
//     buy binary as xnum-buy waking xnum-buy-worker, a second process,
//     through the emulator's FC) vs the dev shape (one process consuming
//     JetStream), orders arriving at a steady rate, and the wake-ups a burst
//     costs.
//
// Usage:
//
//	go run ./bench [flags]
//
// Flags:
//
//	-only LIST        parts to run, comma-separated: coldstart, throughput,
//	                  pipeline, limit, memory, latency (default: all)
//	-reps N           cold starts per binary; the median is reported (default 21)
//	-duration D       remain throughput: measuring time per side (default 4s)
//	-concurrency N    remain throughput: requests in flight (default 16)
//	-provider-latency LIST  remain throughput: latencies the emulator adds to
//	                  QuerySecretNoRemain, one measurement each (default 0,20ms:
//	                  CPU-bound, the strictest, and a provider answering in a
//	                  time like Dyplsapi's from within its region)
//	-orders N         pipeline: orders (default 3000)
//	-workers N        pipeline and limit: orders the worker processes at once (default 64)
//	-qps Q            provider limit: BuySecretNo calls per second allowed (default 20)
//	-limit-orders N   provider limit: orders (default 10)
//	-limit-quantity N provider limit: numbers per order (default 20)
//	-rss-requests N   peak RSS: concurrent requests per round (default 100)
//	-rss-rounds N     peak RSS: rounds of them (default 5)
//	-latency-orders N order latency: orders per shape (default 200)
//	-latency-rate R   order latency: orders a second (default 10)
//	-latency-provider D  order latency: how late the emulator answers each
//	                  Dyplsapi call (default 20ms)
//	-latency-burst N  order latency: orders POSTed at once in the FC shape (default 50)
//	-profile DIR      write CPU profiles of the bench process's parts to DIR
//	-keep             keep the built binaries and print where
//	-q                no progress lines on stderr
//
// The table goes to stdout, progress to stderr. It exits 1 when a goal is
// missed, 2 when the bench itself could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/internal/gobuild"
)

type options struct {
	parts           []string
	reps            int
	duration        time.Duration
	concurrency     int
	latencies       []time.Duration
	orders          int
	workers         int
	qps             float64
	limitOrders     int
	limitQuantity   int
	rssRequests     int
	rssRounds       int
	latencyOrders   int
	latencyRate     float64
	latencyProvider time.Duration
	latencyBurst    int
	profileDir      string
	keep            bool
}

var allParts = []string{"coldstart", "throughput", "pipeline", "limit", "memory", "latency"}

var progress io.Writer = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(progress, "bench: "+format+"\n", args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	os.Exit(code)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	only := fs.String("only", strings.Join(allParts, ","), "parts to run: "+strings.Join(allParts, ", "))
	fs.IntVar(&o.reps, "reps", 21, "cold starts per binary; the median is reported")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "remain throughput: measuring time per side")
	fs.IntVar(&o.concurrency, "concurrency", 16, "remain throughput: requests in flight")
	latencies := fs.String("provider-latency", "0,20ms", "remain throughput: latencies the emulator adds to QuerySecretNoRemain, comma-separated, one measurement each")
	fs.IntVar(&o.orders, "orders", 3000, "pipeline: orders")
	fs.IntVar(&o.workers, "workers", 64, "pipeline and limit: orders the worker processes at once")
	fs.Float64Var(&o.qps, "qps", 20, "provider limit: BuySecretNo calls per second allowed")
	fs.IntVar(&o.limitOrders, "limit-orders", 10, "provider limit: orders")
	fs.IntVar(&o.limitQuantity, "limit-quantity", 20, "provider limit: numbers per order")
	fs.IntVar(&o.rssRequests, "rss-requests", 100, "peak RSS: concurrent requests per round")
	fs.IntVar(&o.rssRounds, "rss-rounds", 5, "peak RSS: rounds of them")
	fs.IntVar(&o.latencyOrders, "latency-orders", 200, "order latency: orders per shape")
	fs.Float64Var(&o.latencyRate, "latency-rate", 10, "order latency: orders a second")
	fs.DurationVar(&o.latencyProvider, "latency-provider", 20*time.Millisecond, "order latency: how late the emulator answers each Dyplsapi call")
	fs.IntVar(&o.latencyBurst, "latency-burst", 50, "order latency: orders POSTed at once in the FC shape")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU profiles of the bench process's parts to this directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the built binaries")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for l := range strings.SplitSeq(*latencies, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(l))
		if err != nil || d < 0 || d > time.Second {
			return o, fmt.Errorf("-provider-latency: %q is not a duration between 0 and 1s", l)
		}
		o.latencies = append(o.latencies, d)
	}
	for p := range strings.SplitSeq(*only, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allParts, p) {
			return o, fmt.Errorf("-only: unknown part %q (want %s)", p, strings.Join(allParts, ", "))
		}
		o.parts = append(o.parts, p)
	}
	switch {
	case o.reps < 1, o.concurrency < 1, o.orders < 1, o.workers < 1, o.limitOrders < 1,
		o.limitQuantity < 1 || o.limitQuantity > 100, o.rssRequests < 1, o.rssRounds < 1, o.latencyOrders < 1, o.latencyBurst < 2:
		return o, fmt.Errorf("counts must be positive (and -limit-quantity at most 100)")
	case o.duration < 100*time.Millisecond:
		return o, fmt.Errorf("-duration %v is too short", o.duration)
	case o.qps <= 0:
		return o, fmt.Errorf("-qps must be positive")
	case o.latencyRate <= 0 || o.latencyRate > 1000:
		return o, fmt.Errorf("-latency-rate must be between 0 and 1000 orders a second")
	case o.latencyProvider < 0 || o.latencyProvider > time.Second:
		return o, fmt.Errorf("-latency-provider must be between 0 and 1s")
	}
	if *quiet {
		progress = io.Discard
	}
	return o, nil
}

func (o options) has(part string) bool { return slices.Contains(o.parts, part) }

// run is main without the process; it returns the exit code.
func run(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	o, err := parseFlags(args)
	if err != nil {
		return 2, err
	}
	start := time.Now()
	load0 := loadAverage()
	dir, err := os.MkdirTemp("", "xnum-bench-")
	if err != nil {
		return 2, err
	}
	if o.keep {
		logf("binaries in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	b, err := buildAll(ctx, dir, o)
	if err != nil {
		return 2, err
	}
	logf("built in %v", time.Since(start).Round(time.Millisecond))

	rows, err := measure(ctx, o, b)
	if err != nil {
		return 2, err
	}
	fmt.Fprintf(stdout, "xnum bench, %s, %s/%s, %d CPUs, %s, in %v; load average before %s, after %s\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"),
		time.Since(start).Round(time.Second), load0, loadAverage())
	WriteTable(stdout, rows)
	for _, r := range rows {
		if !r.Pass() {
			return 1, nil
		}
	}
	return 0, nil
}

// binaries are the built programs; a function whose package does not exist
// yet is missing with its reason.
type binaries struct {
	hello, helloNATS, remain, pools, buy string
	builds                               map[string]gobuild.Spec // how each was built
	missing                              map[string]error
}

func buildAll(ctx context.Context, dir string, o options) (binaries, error) {
	b := binaries{missing: map[string]error{}, builds: map[string]gobuild.Spec{}}
	if !o.has("coldstart") && !o.has("throughput") && !o.has("memory") && !o.has("latency") {
		return b, nil
	}
	specs := b.builds
	for _, name := range []string{"remain", "pools", "buy"} {
		spec, err := gobuild.FromSYAML("s.yaml", "./functions/"+name)
		if err != nil {
			logf("%v; building %s with %s", err, name, defaultBuild)
			spec = defaultBuild
		}
		specs[name] = spec
	}
	// The baselines are built as the functions they are held against.
	specs["hello"], specs["hellonats"] = specs["remain"], specs["buy"]
	var err error
	if b.hello, err = specs["hello"].Build(ctx, dir, "hello", "./bench/internal/hello"); err != nil {
		return b, err
	}
	if b.helloNATS, err = specs["hellonats"].Build(ctx, dir, "hellonats", "./bench/internal/hellonats"); err != nil {
		return b, err
	}
	for _, f := range []struct {
		name string
		out  *string
	}{{"remain", &b.remain}, {"pools", &b.pools}, {"buy", &b.buy}} {
		pkg := "./functions/" + f.name
		if _, serr := os.Stat(filepath.FromSlash(pkg)); serr != nil {
			b.missing[f.name] = fmt.Errorf("%s does not exist yet", pkg)
			continue
		}
		if *f.out, err = specs[f.name].Build(ctx, dir, f.name, pkg); err != nil {
			b.missing[f.name] = err
		}
		logf("built %s with %s (from %s)", f.name, specs[f.name], specs[f.name].From)
	}
	return b, nil
}

// profiled runs f with the CPU profiled into the profile directory, if any.
func profiled(o options, name string, f func()) {
	if o.profileDir == "" {
		f()
		return
	}
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		logf("profile: %v", err)
		f()
		return
	}
	path := filepath.Join(o.profileDir, name+".cpu.pprof")
	out, err := os.Create(path)
	if err != nil {
		logf("profile: %v", err)
		f()
		return
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		logf("profile: %v", err)
		f()
		return
	}
	f()
	pprof.StopCPUProfile()
	logf("CPU profile of %s in %s", name, path)
}

// loadAverage is the machine's one-minute load average: other work on the
// machine during a run shows in its figures, this tells how much there was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
