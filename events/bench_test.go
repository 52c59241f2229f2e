package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
)

var benchOrder = events.OrderRequested{OrderID: "ord_bench0000000000000000000001", PoolKey: "FC100000000000001", City: "杭州", SpecID: 2, Quantity: 3, Prefix: "130"}

func benchEnvelope(b *testing.B) []byte {
	b.Helper()
	ev, err := events.New(events.SourceIntake, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), benchOrder)
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodeOrderRequested is the worker's first step on every
// message: decode (our CloudEvent, or the bare order) and validate.
func BenchmarkDecodeOrderRequested(b *testing.B) {
	bare, err := json.Marshal(benchOrder)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		body []byte
	}{{"cloudevent", benchEnvelope(b)}, {"bare", bare}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				o, err := events.DecodeOrderRequested(c.body)
				if err != nil {
					b.Fatal(err)
				}
				if err := o.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeEvent is what every publish does before the wire: wrap the
// payload in its envelope and marshal it.
func BenchmarkEncodeEvent(b *testing.B) {
	t := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		p    events.Payload
	}{
		{"order.requested", benchOrder},
		{"number.purchased", events.NumberPurchased{OrderID: benchOrder.OrderID, SecretNo: "17001000001", PoolKey: benchOrder.PoolKey, City: "杭州", SpecID: 2, RequestID: "A1B2C3"}},
		{"order.completed", events.OrderCompleted{OrderID: benchOrder.OrderID, Numbers: []string{"17001000001", "17001000002", "17001000003"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev, err := events.New(events.SourceWorker, t, c.p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
