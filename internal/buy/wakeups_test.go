package buy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/wakeup"
)

func wakeupMsg(t *testing.T, orders ...string) trigger.Message {
	t.Helper()
	p := wakeup.Payload{Type: wakeup.Type}
	for _, o := range orders {
		p.Orders = append(p.Orders, json.RawMessage(o))
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return trigger.Message{ID: "fc-1", Source: trigger.SourceDirect, Body: b}
}

// A wake-up reaches the worker as the orders it carries, each on its own;
// the wake-up's answer is the join of theirs, and other messages pass as
// they came.
func TestWithWakeups(t *testing.T) {
	var seen []string
	next := trigger.EventHandlerFunc(func(_ context.Context, msgs []trigger.Message) []error {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			seen = append(seen, m.Source+":"+string(m.Body))
			if strings.Contains(string(m.Body), "later") {
				errs[i] = errors.New("deliver " + string(m.Body) + " again")
			}
		}
		return errs
	})
	cases := []struct {
		name string
		msgs []trigger.Message
		seen []string
		errs []string // "" for nil
	}{
		{"no wake-up", []trigger.Message{{Source: trigger.SourceTimer, Body: []byte("drain")}, {Source: trigger.SourceDirect, Body: []byte(`{"orderId":"a"}`)}},
			[]string{"timer:drain", `direct:{"orderId":"a"}`}, []string{"", ""}},
		{"wake-up among others", []trigger.Message{
			{Source: trigger.SourceTimer, Body: []byte("drain")},
			wakeupMsg(t, `{"orderId":"w1"}`, `{"orderId":"w2-later"}`, `{"orderId":"w3-later"}`),
			{Source: trigger.SourceMNS, Body: []byte(`{"orderId":"m-later"}`)},
		}, []string{"timer:drain", `direct:{"orderId":"w1"}`, `direct:{"orderId":"w2-later"}`, `direct:{"orderId":"w3-later"}`, `mns:{"orderId":"m-later"}`},
			[]string{"", `deliver {"orderId":"w2-later"} again` + "\n" + `deliver {"orderId":"w3-later"} again`, `deliver {"orderId":"m-later"} again`}},
		{"empty wake-up", []trigger.Message{wakeupMsg(t)}, nil, []string{""}},
		{"a wake-up's body from a queue is an order, not a wake-up", []trigger.Message{{Source: trigger.SourceMNS, Body: wakeupMsg(t, `{"orderId":"x"}`).Body}},
			[]string{"mns:" + string(wakeupMsg(t, `{"orderId":"x"}`).Body)}, []string{""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen = nil
			errs := withWakeups(next).HandleEvents(context.Background(), c.msgs)
			if strings.Join(seen, "|") != strings.Join(c.seen, "|") {
				t.Fatalf("the worker saw\n%v\nwant\n%v", seen, c.seen)
			}
			if len(errs) != len(c.errs) {
				t.Fatalf("%d answers for %d messages", len(errs), len(c.msgs))
			}
			for i, err := range errs {
				got := ""
				if err != nil {
					got = err.Error()
				}
				if got != c.errs[i] {
					t.Fatalf("answer %d: %q, want %q", i, got, c.errs[i])
				}
			}
		})
	}
}
