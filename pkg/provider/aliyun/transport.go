package aliyun

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
)

// callTransport carries one call's HTTP exchange over the shared pool. It
// binds the call's context to the request the SDK built without one, and
// records whether the request was written, which is what separates "nothing
// was sent" from "the outcome is unknown".
type callTransport struct {
	base http.RoundTripper
	ctx  context.Context
	// detach lets a written request run to its answer (or its timeout) when
	// ctx is cancelled: for a buy, an answer is worth more than a prompt
	// return, which would leave it in doubt.
	detach bool
	sent   atomic.Bool
}

func (t *callTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			t.sent.Store(true)
			if t.detach {
				stop()
			}
		},
	}
	resp, err := t.base.RoundTrip(r.WithContext(httptrace.WithClientTrace(ctx, trace)))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releasingBody frees the call's context when the SDK closes the answer.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
