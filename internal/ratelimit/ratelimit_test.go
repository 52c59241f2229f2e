package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/ratelimit"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// bucket opens the limits bucket on s through a connection of its own, as
// each worker process has.
func bucket(t testing.TB, url string, opts ...queue.Option) jetstream.KeyValue {
	t.Helper()
	_, js := testutil.JetStream(t, url)
	q, err := queue.Setup(context.Background(), js, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return q.Limits
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Three processes' limiters on one entry hand out slots at the one rate
// together: n calls take at least n-1 intervals, however many callers.
// (A loaded machine only makes them slower, so the bound holds there too.)
func TestLimitersShareOneRate(t *testing.T) {
	s := embednats.RunTest(t)
	ctx := ctxT(t)
	const rate, callers, calls = 40.0, 9, 60
	var limiters []*ratelimit.Limiter
	for range 3 {
		l, err := ratelimit.New(bucket(t, s.ClientURL()), "buy", rate)
		if err != nil {
			t.Fatal(err)
		}
		limiters = append(limiters, l)
	}
	var (
		mu    sync.Mutex
		times []time.Time
		wg    sync.WaitGroup
	)
	start := time.Now()
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls / callers {
				if err := limiters[i%3].Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(times) != calls-calls%callers {
		t.Fatalf("%d calls returned", len(times))
	}
	last := slices.MaxFunc(times, time.Time.Compare)
	minSpan := time.Duration(len(times)-1) * time.Duration(float64(time.Second)/rate)
	if span := last.Sub(start); span < minSpan {
		t.Fatalf("%d calls in %v at %v/s: faster than the rate allows (%v)", len(times), span, rate, minSpan)
	}
	t.Logf("%d calls by %d callers over 3 limiters in %v (the rate allows no less than %v)", len(times), callers, last.Sub(start).Round(time.Millisecond), minSpan)
}

func TestWaitStopsWithItsContext(t *testing.T) {
	s := embednats.RunTest(t)
	l, err := ratelimit.New(bucket(t, s.ClientURL()), "buy", 0.5) // a slot every two seconds
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("the first slot is free: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := l.Wait(short); !errors.Is(err, ratelimit.ErrTooLate) {
		t.Fatalf("a slot after the deadline: %v, want ErrTooLate", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if err := l.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v", err)
	}
	s.Shutdown()
	down, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := l.Wait(down); provider.KindOf(err) != provider.ErrUnavailable {
		t.Fatalf("with NATS down: %v (kind %s), want unavailable", err, provider.KindOf(err))
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	s := embednats.RunTest(t)
	kv := bucket(t, s.ClientURL())
	for name, tc := range map[string]struct {
		kv   jetstream.KeyValue
		key  string
		rate float64
	}{
		"no bucket": {nil, "buy", 1}, "no key": {kv, "", 1}, "zero rate": {kv, "buy", 0},
		"negative rate": {kv, "buy", -1}, "NaN": {kv, "buy", math.NaN()}, "infinite": {kv, "buy", math.Inf(1)},
	} {
		if _, err := ratelimit.New(tc.kv, tc.key, tc.rate); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkWait is what the shared limiter costs a buy when it does not
// have to wait: a read and a compare-and-set of the entry, on one server and
// on a three-server cluster with three replicas.
func BenchmarkWait(b *testing.B) {
	for _, bc := range []struct {
		name string
		kv   func(b *testing.B) jetstream.KeyValue
	}{
		{"one server", func(b *testing.B) jetstream.KeyValue { return bucket(b, embednats.RunTest(b).ClientURL()) }},
		{"three servers, R3", func(b *testing.B) jetstream.KeyValue {
			return bucket(b, embednats.RunTestCluster(b, 3).ClientURL(), queue.WithReplicas(3))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := ratelimit.New(bc.kv(b), "buy", 1e6)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if err := l.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
