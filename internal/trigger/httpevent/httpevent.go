// Package httpevent turns the HTTP-trigger events of event-style runtimes
// (API Gateway and function URLs on Lambda, FC3's HTTP trigger on the go1
// runtime) into the net/http request they stand for, and an answer back
// into an event body, so every runtime serves the function's own routes.
package httpevent

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Request is the parts of an HTTP-trigger event a request is built from.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     string
	// IsBase64 says Body is base64 of the bytes sent.
	IsBase64 bool
	// SourceIP is the client's address as the trigger saw it ("" unknown).
	SourceIP string
}

// NewRequest returns the server request r stands for, carrying ctx.
func NewRequest(ctx context.Context, r Request) (*http.Request, error) {
	b := []byte(r.Body)
	if r.IsBase64 {
		var err error
		if b, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			return nil, fmt.Errorf("event body is not base64: %w", err)
		}
	}
	target := r.Path
	if r.RawQuery != "" {
		target += "?" + r.RawQuery
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || r.Method == "" {
		return nil, fmt.Errorf("event has no valid method and path: %q %q", r.Method, target)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.RequestURI = u.RequestURI()
	if r.Header != nil {
		req.Header = r.Header
	}
	req.Host = req.Header.Get("Host")
	req.ContentLength = int64(len(b))
	if r.SourceIP != "" {
		req.RemoteAddr = r.SourceIP + ":0"
	}
	return req, nil
}

// Body returns an answer's body as an event carries it: as text when it is
// UTF-8 text by its Content-Type, else base64 (the bool says which).
func Body(header http.Header, b []byte) (string, bool) {
	ct := header.Get("Content-Type")
	textual := ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "xml")
	if textual && utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}
