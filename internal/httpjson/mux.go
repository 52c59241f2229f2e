package httpjson

import (
	"net/http"
	"slices"
	"sync"
)

// Mux is an http.ServeMux (Go 1.22 patterns, "GET /pools/{poolNo}") whose
// unknown paths answer 404 NotFound and wrong methods 405 MethodNotAllowed,
// with the Allow header, in the shared JSON error shape instead of
// ServeMux's plain text.
type Mux struct {
	mux      http.ServeMux
	mu       sync.Mutex
	patterns []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
}

// HandleFunc registers f for pattern.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Patterns lists the registered patterns in registration order, so tests
// can check each is documented.
func (m *Mux) Patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.patterns)
}

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.mux.Handler(r)
	if pattern != "" {
		m.mux.ServeHTTP(w, r)
		return
	}
	// No route matched: ServeMux's handler would write plain text. Run it
	// against a recorder to learn whether it is a 404 or a 405 (and the
	// methods it allows), then answer in JSON.
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		Write(w, http.StatusMethodNotAllowed, errorBody(r, CodeMethodNotAllowed,
			"method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow))
	default:
		Write(w, http.StatusNotFound, errorBody(r, "NotFound", "no route for "+r.Method+" "+r.URL.Path))
	}
}

func errorBody(r *http.Request, code, message string) ErrorBody {
	_, body := Describe(r.Context(), &StatusError{Code: code, Message: message})
	return body
}

// recorder keeps only the status and headers ServeMux's fallback writes.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
