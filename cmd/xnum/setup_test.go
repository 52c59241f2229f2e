package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
)

func setup(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"setup"}, args...), &out, &errOut)
	return out.String(), err
}

func TestSetupCommand(t *testing.T) {
	ns := embednats.RunTest(t)
	t.Setenv(config.NATSURL, ns.ClientURL())
	t.Setenv(config.NATSCreds, "")
	t.Setenv(config.NATSReplicas, "")

	out, err := setup(t, "--dry-run")
	if err != nil || strings.Count(out, "\nwould create ")+1 != 7 || !strings.HasPrefix(out, "would create stream XNUM: subjects xnum.orders.>, xnum.numbers.>; replicas 1") ||
		!strings.HasSuffix(out, "dry run: 7 changes, none made\n") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	nc, js := testutil.JetStream(t, ns.ClientURL())
	defer nc.Close()
	if _, err := js.Stream(context.Background(), queue.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("after a dry run: %v", err)
	}

	out, err = setup(t)
	if err != nil || strings.Count(out, "create ") != 7 || !strings.HasSuffix(out, "7 of 7 changes made\n") {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	if out, err = setup(t); err != nil || out != "nothing to change: every object is there with what xnum needs\n" {
		t.Fatalf("setup again: %v\n%s", err, out)
	}

	// A consumer an operator pointed at every order event is fixed, and only
	// that is changed.
	ctx := context.Background()
	con, err := js.Consumer(ctx, queue.StreamName, queue.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	cc := con.CachedInfo().Config
	cc.FilterSubject, cc.AckWait = "xnum.orders.>", time.Minute
	if _, err := js.UpdateConsumer(ctx, queue.StreamName, cc); err != nil {
		t.Fatal(err)
	}
	out, err = setup(t)
	if err != nil || out != "update consumer XNUM/xnum-buy: filter subject xnum.orders.requested (has xnum.orders.>)\n1 of 1 changes made\n" {
		t.Fatalf("setup of a misdirected consumer: %v\n%s", err, out)
	}
	if con, _ = js.Consumer(ctx, queue.StreamName, queue.ConsumerName); con.CachedInfo().Config.AckWait != time.Minute {
		t.Fatalf("setup changed the operator's ack wait: %v", con.CachedInfo().Config.AckWait)
	}

	// What NATS cannot change in place is reported, and nothing changes.
	if err := js.DeleteConsumer(ctx, queue.StreamName, queue.ConsumerName); err != nil {
		t.Fatal(err)
	}
	cc.FilterSubject, cc.AckPolicy = "xnum.orders.>", jetstream.AckNonePolicy
	if _, err := js.CreateConsumer(ctx, queue.StreamName, cc); err != nil {
		t.Fatal(err)
	}
	out, err = setup(t)
	if err == nil || !strings.Contains(err.Error(), "nothing changed") || !strings.Contains(out, "cannot fix: consumer XNUM/xnum-buy needs explicit acks (has AckNone)") {
		t.Fatalf("setup of a consumer without acks: %v\n%s", err, out)
	}
	if con, _ = js.Consumer(ctx, queue.StreamName, queue.ConsumerName); con.CachedInfo().Config.FilterSubject != "xnum.orders.>" {
		t.Fatal("a refused setup changed the consumer")
	}

	for _, args := range [][]string{{"--replicas", "2"}, {"--replicas", "7"}, {"extra"}, {"--nats", "http://x:1"}} {
		if _, err := setup(t, args...); err == nil {
			t.Errorf("setup %q: accepted", args)
		}
	}
	t.Setenv(config.NATSReplicas, "4")
	if _, err := setup(t); err == nil || !strings.Contains(err.Error(), config.NATSReplicas) {
		t.Errorf("setup with %s=4: %v", config.NATSReplicas, err)
	}
}
