package queue

import "testing"

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		covers     bool
	}{
		{"xnum.orders.>", "xnum.orders.>", true},
		{"xnum.>", "xnum.orders.>", true},
		{">", "xnum.numbers.>", true},
		{"xnum.*.>", "xnum.orders.>", true},
		{"xnum.orders.*", "xnum.orders.requested", true},
		{"xnum.orders.requested", "xnum.orders.requested", true},
		{"xnum.orders.*", "xnum.orders.>", false},
		{"xnum.orders.requested", "xnum.orders.>", false},
		{"xnum.orders.>", "xnum.orders", false},
		{"xnum.orders", "xnum.orders.>", false},
		{"xnum.numbers.>", "xnum.orders.>", false},
		{"*.orders.>", "xnum.orders.x.y", true},
		{"xnum.*", "xnum.>", false},
	} {
		if got := covers(tc.have, tc.want); got != tc.covers {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.have, tc.want, got, tc.covers)
		}
	}
}
