package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// An order.requested message is either our CloudEvent or the bare order;
// both decode to the same order.
func ExampleDecodeOrderRequested() {
	bare := []byte(`{"orderId":"order-42","poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":3,"prefix":"130"}`)
	cloudEvent := []byte(`{"specversion":"1.0","id":"order-42","source":"/shop","type":"xnum.order.requested",
		"data":{"orderId":"order-42","poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":3,"prefix":"130"}}`)
	for _, msg := range [][]byte{bare, cloudEvent} {
		o, err := events.DecodeOrderRequested(msg)
		if err == nil {
			err = o.Validate()
		}
		fmt.Printf("%s: %d numbers of spec %d in %s, prefix %s, err %v\n", o.OrderID, o.Quantity, o.SpecID, o.City, o.Prefix, err)
	}
	// Output:
	// order-42: 3 numbers of spec 2 in 北京, prefix 130, err <nil>
	// order-42: 3 numbers of spec 2 in 北京, prefix 130, err <nil>
}

// A misspelt field is refused, naming the field, rather than read as its
// default: on a path that spends money a typo must not go unnoticed.
func ExampleDecodeOrderRequested_unknownField() {
	_, err := events.DecodeOrderRequested([]byte(`{"orderId":"order-43","poolKey":"FC1","city":"北京","specId":2,"quantitiy":3}`))
	var pe *provider.Error
	fmt.Println(errors.Is(err, provider.ErrInvalidParameter), errors.As(err, &pe) && pe.Field == "quantitiy")
	// Output: true true
}

// New wraps an event's data in a CloudEvents envelope; its id, also the
// Nats-Msg-Id it is published with, is stable, so a publish repeated after
// a crash is dropped by JetStream's duplicate window.
func ExampleNew() {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	ev, err := events.New(events.SourceIntake, at, events.OrderCompleted{OrderID: "order-42", Numbers: events.Numbers{"13002000000"}})
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(ev)
	fmt.Println(ev.Subject(), ev.MsgID())
	fmt.Println(string(b))
	// Output:
	// xnum.orders.completed order-42/completed
	// {"specversion":"1.0","id":"order-42/completed","source":"/xnum/intake","type":"xnum.order.completed","time":"2026-03-01T08:00:00Z","datacontenttype":"application/json","data":{"orderId":"order-42","numbers":["13002000000"]}}
}
