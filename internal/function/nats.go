//go:build !nonats

package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
)

// natsOptions are the NATS settings of Serve.
type natsOptions struct {
	nc   *nats.Conn
	url  string
	opts []nats.Option
}

// WithNATS serves the function's services on nc, a connection the caller
// owns and closes.
func WithNATS(nc *nats.Conn) Option { return func(o *options) { o.nats.nc = nc } }

// WithNATSURL connects to url (when not empty) for the function's services;
// Run owns that connection and drains it on the way out. The connection
// retries in the background, so an unreachable NATS does not stop the HTTP
// server from starting.
func WithNATSURL(url string, opts ...nats.Option) Option {
	return func(o *options) { o.nats.url, o.nats.opts = url, opts }
}

// natsFrom is the option Run adds for the configured NATS.
func natsFrom(n config.NATS) (Option, error) { return WithNATSURL(n.URL, n.Options()...), nil }

// natsServices is the NATS side of a served function: its connection, if
// any, and whether Serve owns it.
type natsServices struct {
	nc  *nats.Conn
	own bool
	log *slog.Logger
}

// startNATS returns the NATS connection for fn's services: the caller's, or
// one of its own when a URL is configured and fn has services.
func startNATS(ctx context.Context, fn trigger.Function, o options) (natsServices, error) {
	if o.nats.nc != nil {
		return natsServices{nc: o.nats.nc}, nil
	}
	if o.nats.url == "" || len(fn.Services) == 0 {
		return natsServices{}, nil
	}
	opts := append([]nats.Option{
		nats.Name("xnum-" + fn.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.logger.WarnContext(ctx, "NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { o.logger.InfoContext(ctx, "NATS connected", "url", c.ConnectedUrlRedacted()) }),
	}, o.nats.opts...)
	nc, err := nats.Connect(o.nats.url, opts...)
	if err != nil {
		return natsServices{}, fmt.Errorf("serve: NATS: %w", err)
	}
	if !nc.IsConnected() {
		o.logger.WarnContext(ctx, "NATS is not reachable yet; retrying in the background", "url", redactURL(o.nats.url))
	}
	return natsServices{nc: nc, own: true}, nil
}

// flush is the pre-stop hook that flushes the connection, or nil.
func (s natsServices) flush() func(context.Context) error {
	if s.nc == nil {
		return nil
	}
	return s.nc.FlushWithContext
}

// ready is the readiness check of the connection, or nil.
func (s natsServices) ready() func(context.Context) error {
	if s.nc == nil {
		return nil
	}
	return NATSReady(s.nc)
}

// NATSReady is Ops's check of nc: an error while it is not connected.
func NATSReady(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("NATS is not connected (" + nc.Status().String() + ")")
		}
		return nil
	}
}

// serve runs fn's services on the connection, or is nil.
func (s natsServices) serve(fn trigger.Function, log *slog.Logger) func(context.Context) error {
	if s.nc == nil || len(fn.Services) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		return natsrpc.Serve(ctx, s.nc, fn.Services, natsrpc.WithLogger(log))
	}
}

// close drains a connection Serve owns, within timeout.
func (s natsServices) close(timeout time.Duration) {
	if s.nc == nil || !s.own {
		return
	}
	nc := s.nc
	if !nc.IsConnected() {
		nc.Close()
		return
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	nc.Close()
}

// redactURL drops a password or token a NATS URL may carry before it is
// logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("[redacted]")
	}
	return u.String()
}
