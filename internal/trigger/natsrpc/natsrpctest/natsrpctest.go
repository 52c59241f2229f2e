// Package natsrpctest serves a function's NATS request-reply services for a
// test on an embedded NATS server, and sends them requests once they listen.
package natsrpctest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
)

// Serve serves services (natsrpc.Serve with opts) on a new embedded NATS
// server until the test ends, and returns a client connection to it. The
// test fails if Serve returns an error.
func Serve(t testing.TB, services []trigger.Service, opts ...natsrpc.Option) *nats.Conn {
	t.Helper()
	ns := embednats.RunTest(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- natsrpc.Serve(ctx, nc, services, opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("natsrpc.Serve: %v", err)
		}
		nc.Close()
	})
	return nc
}

// Request is natsrpc.Request, sent again while no service answers the
// subject yet (services subscribe in the background), for up to 5 seconds.
func Request(t testing.TB, nc *nats.Conn, subject string, in, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err := natsrpc.Request(ctx, nc, subject, in, out)
		if !errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
