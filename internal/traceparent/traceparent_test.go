package traceparent

import (
	"context"
	"testing"
)

func TestParse(t *testing.T) {
	const spec = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" // the spec's example
	for _, tc := range []struct {
		in   string
		ok   bool
		want string // String() after parsing, when ok
	}{
		{spec, true, spec},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		// A later version: its first four fields are read, the rest ignored.
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes", true, spec},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, spec},
		{"", false, ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", false, ""},      // version 00 has exactly four fields
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, ""},      // a later field must follow a dash
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, ""},       // version ff is invalid
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, ""},       // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, ""},       // zero span id
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, ""},       // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", false, ""},       // dashes misplaced
		{"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, ""},       // not dashes
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false, ""},       // flags not hex
		{"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, ""},       // version not hex
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n", false, ""},     // trailing newline
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 extra", false, ""}, // trailing data
	} {
		c, err := Parse(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("Parse(%q): err %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && c.String() != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, c.String(), tc.want)
		}
		if !tc.ok && c != (Context{}) {
			t.Errorf("Parse(%q) = %v with an error, want the zero Context", tc.in, c)
		}
	}
}

func TestContinue(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c := Continue(parent)
	if got := c.TraceIDString(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s, want the parent's", got)
	}
	if c.SpanIDString() == "00f067aa0ba902b7" || !c.Valid() || c.Flags != 1 {
		t.Errorf("child %v: want a new valid span id and the parent's flags", c)
	}
	if _, err := Parse(c.String()); err != nil {
		t.Errorf("the child's traceparent %q does not parse: %v", c, err)
	}
	fresh := Continue("garbage")
	if !fresh.Valid() || fresh.TraceIDString() == c.TraceIDString() {
		t.Errorf("Continue of garbage = %v, want a new trace", fresh)
	}
	if Continue("garbage").TraceID == fresh.TraceID {
		t.Error("two new traces share a trace id")
	}
}

func TestContext(t *testing.T) {
	if _, ok := From(context.Background()); ok {
		t.Error("From found a trace in an empty context")
	}
	if _, ok := From(With(context.Background(), Context{})); ok {
		t.Error("From found the zero Context")
	}
	c := New()
	got, ok := From(With(context.Background(), c))
	if !ok || got != c {
		t.Errorf("From = %v, %v; want %v", got, ok, c)
	}
}
