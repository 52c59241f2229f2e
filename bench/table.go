package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Row is one figure of the table: what xnum measured, what the baseline
// built and run beside it measured, and the goals it is held to.
type Row struct {
	Figure   string
	Measured float64
	Baseline float64 // 0: no baseline
	Unit     string  // ms, req/s, orders/s, numbers/s, MB, count
	// BaselineOf says what the baseline is ("net/http hello").
	BaselineOf string
	Goals      []Goal
	// Err is why the row could not be measured; such a row fails.
	Err error
}

// Ratio is Measured / Baseline, NaN without a baseline.
func (r Row) Ratio() float64 {
	if r.Baseline == 0 {
		return math.NaN()
	}
	return r.Measured / r.Baseline
}

// Pass tells whether every goal is met.
func (r Row) Pass() bool {
	if r.Err != nil {
		return false
	}
	for _, g := range r.Goals {
		if !g.Met(r) {
			return false
		}
	}
	return true
}

// Goal is one bound on a row.
type Goal struct {
	Text string
	Met  func(Row) bool
}

// RatioAtMost bounds Measured / Baseline from above.
func RatioAtMost(x float64) Goal {
	return Goal{Text: "≤ " + fmtFloat(x) + "×", Met: func(r Row) bool { return r.Ratio() <= x }}
}

// RatioAtLeast bounds Measured / Baseline from below.
func RatioAtLeast(x float64) Goal {
	return Goal{Text: "≥ " + fmtFloat(x) + "×", Met: func(r Row) bool { return r.Ratio() >= x }}
}

// AtLeast bounds Measured from below.
func AtLeast(x float64, unit string) Goal {
	return Goal{Text: "≥ " + fmtValue(x, unit), Met: func(r Row) bool { return r.Measured >= x }}
}

// AtMost bounds Measured from above.
func AtMost(x float64, unit string) Goal {
	return Goal{Text: "≤ " + fmtValue(x, unit), Met: func(r Row) bool { return r.Measured <= x }}
}

// None requires Measured to be 0.
func None() Goal {
	return Goal{Text: "0", Met: func(r Row) bool { return r.Measured == 0 }}
}

// WriteTable prints rows as a Markdown table, ready for the README.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| figure | measured | baseline | ratio | goal | result |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	for _, r := range rows {
		measured, baseline, ratio := "—", "—", "—"
		if r.Err == nil {
			measured = fmtValue(r.Measured, r.Unit)
			if r.Baseline != 0 {
				baseline = fmtValue(r.Baseline, r.Unit)
				ratio = fmtFloat(r.Ratio()) + "×"
			}
		}
		if r.BaselineOf != "" && r.Err == nil {
			baseline += " (" + r.BaselineOf + ")"
		}
		goals := make([]string, len(r.Goals))
		for i, g := range r.Goals {
			goals[i] = g.Text
		}
		result := "pass"
		switch {
		case r.Err != nil:
			result = "FAIL: " + strings.ReplaceAll(r.Err.Error(), "|", "/")
		case !r.Pass():
			result = "FAIL"
		case len(r.Goals) == 0:
			result = "info"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Figure, measured, baseline, ratio, strings.Join(goals, ", "), result)
	}
}

func fmtValue(x float64, unit string) string {
	switch unit {
	case "count":
		return fmt.Sprintf("%.0f", x)
	case "×":
		return fmtFloat(x) + "×"
	}
	return fmtFloat(x) + " " + unit
}

// fmtFloat shows three significant digits at most, no exponent.
func fmtFloat(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return fmt.Sprint(x)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return trimZeros(fmt.Sprintf("%.1f", x))
	default:
		return trimZeros(fmt.Sprintf("%.2f", x))
	}
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// median of ds; 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
