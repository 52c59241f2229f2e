package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 2, 2, 10}, 6},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestGoals(t *testing.T) {
	for _, c := range []struct {
		name string
		row  Row
		pass bool
	}{
		{"ratio at most, met", Row{Measured: 3, Baseline: 2, Goals: []Goal{RatioAtMost(1.5)}}, true},
		{"ratio at most, missed", Row{Measured: 3.1, Baseline: 2, Goals: []Goal{RatioAtMost(1.5)}}, false},
		{"ratio at least, missed", Row{Measured: 1, Baseline: 2, Goals: []Goal{RatioAtLeast(0.8)}}, false},
		{"no baseline fails a ratio goal", Row{Measured: 1, Goals: []Goal{RatioAtLeast(0.8)}}, false},
		{"both goals needed", Row{Measured: 2500, Baseline: 20000, Goals: []Goal{AtLeast(2000, "orders/s"), RatioAtLeast(0.25)}}, false},
		{"at most", Row{Measured: 40, Goals: []Goal{AtMost(40, "MB")}}, true},
		{"none", Row{Measured: 1, Goals: []Goal{None()}}, false},
		{"an error fails", Row{Measured: 1, Goals: []Goal{AtMost(2, "MB")}, Err: errors.New("x")}, false},
	} {
		if got := c.row.Pass(); got != c.pass {
			t.Errorf("%s: Pass() = %v, want %v", c.name, got, c.pass)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	WriteTable(&b, []Row{
		{Figure: "cold start", Measured: 4.5, Baseline: 3, Unit: "ms", BaselineOf: "hello", Goals: []Goal{RatioAtMost(1.5)}},
		{Figure: "size", Measured: 16, Unit: "MB", Goals: []Goal{AtMost(15, "MB")}},
		{Figure: "buy", Err: errors.New("a | b")},
	})
	want := `| figure | measured | baseline | ratio | goal | result |
|---|---:|---:|---:|---|---|
| cold start | 4.5 ms | 3 ms (hello) | 1.5× | ≤ 1.5× | pass |
| size | 16 MB | — | — | ≤ 15 MB | FAIL |
| buy | — | — | — |  | FAIL: a / b |
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCityNames(t *testing.T) {
	seen := map[string]bool{}
	for series := range 3 {
		for i := range 2000 {
			c := cityName(series, i)
			if seen[c] {
				t.Fatalf("cityName(%d, %d) = %q twice", series, i, c)
			}
			seen[c] = true
			for _, r := range c {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
					t.Fatalf("cityName(%d, %d) = %q: not letters only", series, i, c)
				}
			}
		}
	}
}

func TestParseFlags(t *testing.T) {
	defer func(w io.Writer) { progress = w }(progress) // -q changes it
	if _, err := parseFlags([]string{"-only", "pipeline,limit", "-q"}); err != nil {
		t.Errorf("valid flags: %v", err)
	}
	for _, args := range [][]string{
		{"-only", "nothing"},
		{"-reps", "0"},
		{"-qps", "0"},
		{"-limit-quantity", "101"},
		{"-duration", "1ms"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}
