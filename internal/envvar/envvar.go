// Package envvar reads configuration from environment variables for the
// packages that own it (each client reads its cloud's variables, the buy
// function its own, internal/config what every function shares), and holds
// the checks of values their configurations have in common: key material,
// region ids and endpoint URLs. The environment is read through a Lookup
// (os.LookupEnv in a main), so tests pass a map.
//
// Every failure is an *Error naming the variable; a reason never quotes a
// secret's value.
package envvar

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Lookup reads one environment variable, as os.LookupEnv does.
type Lookup func(name string) (string, bool)

// Error is a missing or wrong variable. Its message names the variable and
// never holds a secret's value.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Var + " " + e.Reason }

// Bad returns the *Error of variable name.
func Bad(name, reason string) error { return &Error{Var: name, Reason: reason} }

// Get returns a variable's value with surrounding blanks removed; set and
// empty counts as unset.
func Get(lookup Lookup, name string) string {
	v, _ := lookup(name)
	return strings.TrimSpace(v)
}

// Duration reads an optional Go duration (5s, 1m30s); unset is 0.
func Duration(lookup Lookup, name string) (time.Duration, error) {
	s := Get(lookup, name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, Bad(name, "must be a duration such as 5s, not "+strconv.Quote(s))
	}
	return d, nil
}

// DurationIn reads an optional duration from lo to hi; unset is 0.
func DurationIn(lookup Lookup, name string, lo, hi time.Duration) (time.Duration, error) {
	d, err := Duration(lookup, name)
	if err == nil && d != 0 && (d < lo || d > hi) {
		err = Bad(name, "must be a duration from "+short(lo)+" to "+short(hi)+", not "+strconv.Quote(Get(lookup, name)))
	}
	if err != nil {
		return 0, err
	}
	return d, nil
}

// short writes d without the zero minutes and seconds Duration.String
// adds (24h, not 24h0m0s).
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Int reads an optional whole number; unset is def.
func Int(lookup Lookup, name string, def int) (int, error) {
	s := Get(lookup, name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, Bad(name, "must be a whole number, not "+strconv.Quote(s))
	}
	return n, nil
}

// Float reads an optional number in [min, max]; unset is def.
func Float(lookup Lookup, name string, def, min, max float64, unit string) (float64, error) {
	s := Get(lookup, name)
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < min || f > max {
		return 0, Bad(name, fmt.Sprintf("must be a number of %s from %g to %g, not %q", unit, min, max, s))
	}
	return f, nil
}

// Bool reads an optional true or false (also 1, 0, t, f); unset is def.
func Bool(lookup Lookup, name string, def bool) (bool, error) {
	s := Get(lookup, name)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, Bad(name, "must be true or false, not "+strconv.Quote(s))
	}
	return b, nil
}
