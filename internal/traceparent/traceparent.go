// Package traceparent reads, makes and carries W3C Trace Context
// traceparent values (https://www.w3.org/TR/trace-context/), so that the log
// lines of one order — the HTTP request that took it in, the worker that
// bought it — share a trace id.
//
// It is the whole of xnum's tracing: a trace id and span id on the context,
// taken from the caller's traceparent header (or started), carried on the
// order's message as the CloudEvents distributed-tracing extension, and
// written on every log line (internal/logging). No spans are exported; a
// collector that wants them reads the ids from the logs.
package traceparent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// Header is the HTTP header (and CloudEvents attribute) that carries a
// traceparent.
const Header = "traceparent"

// Context is one span's place in a trace.
type Context struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte // bit 0: sampled
}

// ErrInvalid is returned for a value that is not a version-00 traceparent
// (or a later version's first four fields).
var ErrInvalid = errors.New("traceparent: not a W3C traceparent")

// Parse reads a traceparent value: version "00" exactly as the spec writes
// it, or a later version's first four fields, as the spec asks of a reader
// that knows only version 00. All-zero ids and version ff are invalid.
func Parse(s string) (Context, error) {
	if c, ok := parse(s); ok {
		return c, nil
	}
	return Context{}, ErrInvalid
}

func parse(s string) (c Context, ok bool) {
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return c, false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return c, false
	}
	var version [1]byte
	if !lowerHex(s[:2], version[:]) || version[0] == 0xff ||
		!lowerHex(s[3:35], c.TraceID[:]) || !lowerHex(s[36:52], c.SpanID[:]) {
		return c, false
	}
	var flags [1]byte
	if !lowerHex(s[53:55], flags[:]) {
		return c, false
	}
	c.Flags = flags[0]
	return c, c.Valid()
}

// lowerHex decodes s into dst, accepting only lower-case hex digits.
func lowerHex(s string, dst []byte) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// Valid reports whether c has a non-zero trace id and span id.
func (c Context) Valid() bool { return c.TraceID != [16]byte{} && c.SpanID != [8]byte{} }

// String is the version-00 traceparent of c.
func (c Context) String() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], c.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], c.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{c.Flags})
	return string(b[:])
}

// TraceIDString and SpanIDString are the ids as the logs write them.
func (c Context) TraceIDString() string { return hex.EncodeToString(c.TraceID[:]) }
func (c Context) SpanIDString() string  { return hex.EncodeToString(c.SpanID[:]) }

// New starts a trace: random ids, sampled.
func New() Context {
	var c Context
	for !c.Valid() {
		rand.Read(c.TraceID[:])
		rand.Read(c.SpanID[:])
	}
	c.Flags = 1
	return c
}

// Child is a new span of c's trace: the same trace id and flags, a new span
// id. A zero c starts a trace instead.
func (c Context) Child() Context {
	if !c.Valid() {
		return New()
	}
	n := c
	for n.SpanID == c.SpanID || n.SpanID == [8]byte{} {
		rand.Read(n.SpanID[:])
	}
	return n
}

// Continue is the span of work that follows the traceparent s: a child of
// s when it is valid, else a new trace.
func Continue(s string) Context {
	parent, err := Parse(s)
	if err != nil {
		return New()
	}
	return parent.Child()
}

type key struct{}

// With returns a context carrying c.
func With(ctx context.Context, c Context) context.Context { return context.WithValue(ctx, key{}, c) }

// From returns the Context With put in ctx; ok is false when there is none.
func From(ctx context.Context) (c Context, ok bool) {
	c, ok = ctx.Value(key{}).(Context)
	return c, ok && c.Valid()
}
