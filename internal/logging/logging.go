// Package logging builds the log/slog JSON logger every xnum function uses:
// each line carries the request id and the trace and span ids
// (internal/traceparent) found in its context and the function's name, and attributes that look like secrets are redacted before they are
// written.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/xnum-dev/xnum/internal/traceparent"
)

// Keys of the attributes this package adds.
const (
	RequestIDKey = "requestId"
	FunctionKey  = "function"
	TraceIDKey   = "traceId"
	SpanIDKey    = "spanId"
)

type (
	requestIDKey struct{}
	functionKey  struct{}
)

// WithRequestID returns a context that carries the request id, so that every
// log line written with it names the request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithFunction returns a context that names the function serving it, for
// processes that serve several functions with one logger (xnum dev). A
// logger that already has a "function" attribute keeps its own.
func WithFunction(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, functionKey{}, name)
}

// Function returns the name WithFunction put in ctx, or "".
func Function(ctx context.Context) string {
	name, _ := ctx.Value(functionKey{}).(string)
	return name
}

// Options configure New.
type Options struct {
	// Level is the minimum level written; nil means slog.LevelInfo.
	Level slog.Leveler
	// Function, when set, is added to every line as "function".
	Function string
}

// New returns a JSON logger writing to w that adds the request id of the
// context to each line and redacts secret-looking attributes.
func New(w io.Writer, o Options) *slog.Logger {
	h := NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       o.Level,
		ReplaceAttr: replaceAttr,
	}))
	l := slog.New(h)
	if o.Function != "" {
		l = l.With(FunctionKey, o.Function)
	}
	return l
}

// ParseLevel reads a level name: debug, info, warn (or warning) or error, in
// any case. The empty string is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}

// NewHandler wraps h so that each record whose context carries a request id
// (a function name, a trace) gets it as a top-level "requestId" ("function",
// "traceId" and "spanId") attribute, even inside groups.
func NewHandler(h slog.Handler) slog.Handler {
	return &handler{root: h, inner: h}
}

type handler struct {
	// root is the wrapped handler before the first WithGroup; inner is it
	// with every WithAttrs/WithGroup applied. replay re-applies, to a root
	// that got the request id, what was applied after the first group, so
	// that the id stays at the top level.
	root   slog.Handler
	inner  slog.Handler
	replay []func(slog.Handler) slog.Handler
	// hasFunction: a top-level "function" attribute was added with WithAttrs.
	hasFunction bool
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var add []slog.Attr
	if id := RequestID(ctx); id != "" && !hasAttr(r, RequestIDKey) {
		add = append(add, slog.String(RequestIDKey, id))
	}
	if fn := Function(ctx); fn != "" && !h.hasFunction && !hasAttr(r, FunctionKey) {
		add = append(add, slog.String(FunctionKey, fn))
	}
	if tc, ok := traceparent.From(ctx); ok && !hasAttr(r, TraceIDKey) {
		add = append(add, slog.String(TraceIDKey, tc.TraceIDString()), slog.String(SpanIDKey, tc.SpanIDString()))
	}
	if len(add) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if len(h.replay) == 0 {
		r = r.Clone()
		r.AddAttrs(add...)
		return h.inner.Handle(ctx, r)
	}
	out := h.root.WithAttrs(add)
	for _, f := range h.replay {
		out = f(out)
	}
	return out.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	n := &handler{root: h.root, inner: h.inner.WithAttrs(as), replay: h.replay, hasFunction: h.hasFunction}
	if len(h.replay) == 0 {
		n.root = n.inner
		for _, a := range as {
			n.hasFunction = n.hasFunction || a.Key == FunctionKey
		}
		return n
	}
	n.replay = append(append([]func(slog.Handler) slog.Handler(nil), h.replay...),
		func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
	return n
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{
		root:        h.root,
		inner:       h.inner.WithGroup(name),
		hasFunction: h.hasFunction,
		replay: append(append([]func(slog.Handler) slog.Handler(nil), h.replay...),
			func(x slog.Handler) slog.Handler { return x.WithGroup(name) }),
	}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// replaceAttr writes each line's time in UTC, the zone FC and Lambda stamp
// their own lines in (and the local zone is then never loaded from the
// disk: that read was part of every cold start), and redacts secrets.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.Time(slog.TimeKey, a.Value.Time().UTC())
	}
	return redact(groups, a)
}
