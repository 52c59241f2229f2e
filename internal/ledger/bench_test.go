package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// benchLedger is a ledger on a fresh embedded JetStream server.
func benchLedger(b *testing.B) (*ledger.Ledger, jetstream.KeyValue) {
	b.Helper()
	s := embednats.RunTest(b)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	q, err := queue.Setup(context.Background(), js)
	if err != nil {
		b.Fatal(err)
	}
	return ledger.New(q.Ledger), q.Ledger
}

// BenchmarkKVUpdate is the floor under every ledger step: one
// compare-and-set of a small value on the embedded server.
func BenchmarkKVUpdate(b *testing.B) {
	_, kv := benchLedger(b)
	ctx := context.Background()
	rev, err := kv.Create(ctx, "bench-order", []byte(`{"status":"accepted"}`))
	if err != nil {
		b.Fatal(err)
	}
	val := []byte(`{"status":"processing"}`)
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = kv.Update(ctx, "bench-order", val, rev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaim is one ledger step: read-modify-write of an order by
// compare-and-set on its revision (clone, JSON encode, KV update).
func BenchmarkClaim(b *testing.B) {
	l, _ := benchLedger(b)
	ctx := context.Background()
	o, _, err := l.CreateOrGet(ctx, events.OrderRequested{OrderID: "bench-renew", PoolKey: "FC1", City: "杭州", SpecID: 1, Quantity: 1})
	if err != nil {
		b.Fatal(err)
	}
	if o, err = l.Claim(ctx, o, "bench", time.Minute, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if o, err = l.Claim(ctx, o, "bench", time.Minute, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuyStep is what the money rule costs per bought number: the
// attempt written before BuySecretNo and the number written after it (two
// compare-and-sets). An order holds at most 100 numbers, so a new one is
// created and claimed every 100 iterations, outside the timer.
func BenchmarkBuyStep(b *testing.B) {
	l, _ := benchLedger(b)
	ctx := context.Background()
	var o *ledger.Order
	orders, i := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		if o == nil || o.Remaining() == 0 {
			b.StopTimer()
			orders++
			req := events.OrderRequested{OrderID: fmt.Sprintf("bench-buy-%d", orders), PoolKey: "FC1", City: "杭州", SpecID: 1, Quantity: events.MaxQuantity}
			var err error
			if o, _, err = l.CreateOrGet(ctx, req); err != nil {
				b.Fatal(err)
			}
			if o, err = l.Claim(ctx, o, "bench", time.Minute, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		i++
		next, err := l.BeginAttempt(ctx, o, "bench", ledger.Bounds{Lease: time.Minute, Answer: 20 * time.Second, Record: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		o, err = l.RecordPurchase(ctx, next, next.Attempt.Seq, provider.BuyResult{SecretNo: fmt.Sprintf("1700%07d", i), RequestID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
	}
}
