package httpjson

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/traceparent"
)

// HeaderRequestID is the caller's request id header, also the one the
// answer echoes.
const HeaderRequestID = "X-Request-Id"

// Wrap is the chain every function's routes run behind: request id, trace,
// access log, panic recovery and the 64 KiB body limit, outermost first.
func Wrap(h http.Handler, logger *slog.Logger) http.Handler {
	return RequestID(Trace(AccessLog(Recover(LimitBody(h, MaxBodyBytes), logger), logger)))
}

// Trace puts the request's span in its context (traceparent.From), where
// the logs and the events it publishes find it: a child of the caller's
// traceparent header when that is valid, else a new trace.
func Trace(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc := traceparent.Continue(r.Header.Get(traceparent.Header))
		h.ServeHTTP(w, r.WithContext(traceparent.With(r.Context(), tc)))
	})
}

// RequestID puts the request id in the request's context (see
// logging.RequestID) and echoes it in X-Request-Id. The id is the one already
// in the context (the platform's: Lambda's, or FC's x-fc-request-id, put
// there by the runtime that trusts it), else the caller's X-Request-Id when
// it is a sane token, else a new random one.
func RequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := logging.RequestID(r.Context())
		if v := r.Header.Get(HeaderRequestID); id == "" && ValidRequestID(v) {
			id = v
		}
		if id == "" {
			id = NewRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		h.ServeHTTP(w, r.WithContext(logging.WithRequestID(r.Context(), id)))
	})
}

// ValidRequestID reports whether a caller's request id can be trusted into
// logs and headers: 1 to 128 characters of letters, digits and "-_.:/@".
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@' || c == '=' || c == '+':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a random id in UUID form.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// LimitBody refuses bodies over n bytes: at once with 413 when
// Content-Length says so, else when the handler reads past n (Decode and
// Describe turn that into 413 PayloadTooLarge).
func LimitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			WriteError(w, r, &http.MaxBytesError{Limit: n})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		h.ServeHTTP(w, r)
	})
}

// Recover turns a handler's panic into a logged 500 Internal answer instead
// of a dropped connection.
func Recover(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v), "method", r.Method, "path", r.URL.Path)
			if ok && sw.status != 0 {
				return // the answer has begun; nothing sane can follow
			}
			WriteError(w, r, fmt.Errorf("panic: %v", v))
		}()
		h.ServeHTTP(w, r)
	})
}

// AccessLog writes one line per request: method, path, status, bytes and
// duration, at debug level for an answer below 400, info for other 4xx and
// error for 5xx. FC (and Lambda) already record every invocation with its
// status and duration; a line of our own for each success would double that
// at the cost of a write per request, so it is there when asked for
// (XNUM_LOG_LEVEL=debug). It never logs headers or bodies.
func AccessLog(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelDebug
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelInfo
		}
		if !logger.Enabled(r.Context(), level) {
			return
		}
		logger.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
		)
	})
}

// statusWriter remembers the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Named puts the function's name in the request's context (see
// logging.WithFunction), so that the logs of a process serving several
// functions on one mux (xnum dev) say which one handled the request.
func Named(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(logging.WithFunction(r.Context(), name)))
	})
}
