package fc

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// liftReadDeadline lifts a request's read deadline (the server's
// ReadTimeout) once its body is read, or at once when it has none. net/http
// watches a connection whose request was read for the caller going away, and
// cancels the request's context when that read fails, a passed deadline
// included: without this, any handler still working ReadTimeout after its
// request began (a remain call with retries, a drain of the queue) would see
// its context cancelled.
func liftReadDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		lift := func() { _ = rc.SetReadDeadline(time.Time{}) }
		if r.Body == nil || r.Body == http.NoBody {
			lift()
		} else {
			// On a copy: the server's own request keeps its body, which it
			// inspects after the handler to decide whether to drain or close.
			r = r.WithContext(r.Context())
			r.Body = &onEOF{ReadCloser: r.Body, f: lift}
		}
		h.ServeHTTP(w, r)
	})
}

// onEOF calls f once, when the body it wraps has been read to its end.
type onEOF struct {
	io.ReadCloser
	once sync.Once
	f    func()
}

func (b *onEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.once.Do(b.f)
	}
	return n, err
}

// noWriteDeadline lifts the server's WriteTimeout for an FC invocation or
// hook, which FC bounds by the function's timeout.
func noWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}
