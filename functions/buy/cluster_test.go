package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
)

// clusterEnv points the buy binary at a three-server cluster and an emulator.
func clusterEnv(t *testing.T, opts ...emulator.Option) (*embednats.Cluster, *emulatortest.Server, testutil.Env) {
	t.Helper()
	c := embednats.RunTestCluster(t, 3)
	emu, e := stack(t, opts...)
	e[config.NATSURL] = c.ClientURL()
	e[config.NATSReplicas] = "3"
	return c, emu, e
}

// A buy function started with XNUM_NATS_REPLICAS=3 makes every object
// three-way replicated; the operator then changes settings, and a restarted
// function (here with the default of one replica) leaves them as they are
// and buys with them.
func TestClusterObjectsAndARestart(t *testing.T) {
	c, emu, e := clusterEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	func() {
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan error, 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- bin.Run(ctx, e, &testutil.SyncBuffer{}, function.WithListener(ln)) }()
		waitServing(t, "http://"+ln.Addr().String())
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()

	_, js := testutil.JetStream(t, c.ClientURL())
	streams := []string{queue.StreamName, queue.AdvisoryStreamName, "KV_" + queue.LedgerBucket, "KV_" + queue.LimitsBucket}
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}
	for _, sc := range [][2]string{{queue.StreamName, queue.ConsumerName}, {queue.AdvisoryStreamName, queue.AdvisoryConsumer}} {
		con, err := js.Consumer(ctx, sc[0], sc[1])
		if err != nil {
			t.Fatal(err)
		}
		if info := con.CachedInfo(); info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("consumer %s/%s: cluster %+v", sc[0], sc[1], info.Cluster)
		}
	}

	// The operator keeps events a week and gives deliveries a minute.
	st, _ := js.Stream(ctx, queue.StreamName)
	sc := st.CachedInfo().Config
	sc.MaxAge = 7 * 24 * time.Hour
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	con, _ := js.Consumer(ctx, queue.StreamName, queue.ConsumerName)
	cc := con.CachedInfo().Config
	cc.AckWait = time.Minute
	if _, err := js.UpdateConsumer(ctx, queue.StreamName, cc); err != nil {
		t.Fatal(err)
	}

	e[config.NATSReplicas] = "1"
	base := bin.Start(t, e, io.Discard)
	if resp, body := testutil.Do(t, "POST", base+"/orders", order("o-restarted", 2)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	if o := waitOrder(t, base, "o-restarted", "completed"); len(o.Numbers) != 2 || len(emu.Dypls().Purchases()) != 2 {
		t.Fatalf("order %+v", o)
	}
	st, _ = js.Stream(ctx, queue.StreamName)
	con, _ = js.Consumer(ctx, queue.StreamName, queue.ConsumerName)
	if got := st.CachedInfo().Config; got.MaxAge != 7*24*time.Hour || got.Replicas != 3 {
		t.Fatalf("after a restart the stream has max age %v, %d replicas", got.MaxAge, got.Replicas)
	}
	if got := con.CachedInfo().Config; got.AckWait != time.Minute || got.Replicas != 3 {
		t.Fatalf("after a restart the consumer has ack wait %v, %d replicas", got.AckWait, got.Replicas)
	}
}
