package embednats_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/embednats"
)

func TestRestartKeepsStreamsAndURL(t *testing.T) {
	s := embednats.RunTest(t)
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q", url)
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "t.x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}

	for round := range 3 {
		if err := s.Restart(ctx); err != nil {
			t.Fatalf("restart %d: %v", round, err)
		}
		if got := s.ClientURL(); got != url {
			t.Fatalf("URL changed across restart: %q -> %q", url, got)
		}
		// The old connection reconnects by itself and sees the stored
		// messages.
		var info *jetstream.StreamInfo
		for {
			st, err := js.Stream(ctx, "T")
			if err == nil {
				info, err = st.Info(ctx)
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("stream after restart %d: %v", round, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if info.State.Msgs != uint64(10+round) {
			t.Fatalf("after restart %d: %d messages, want %d", round, info.State.Msgs, 10+round)
		}
		if _, err := js.Publish(ctx, "t.x", []byte("more")); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("3 restarts on %s, store %s: 13 messages kept", url, s.StoreDir())
}

func TestShutdownRefusesClients(t *testing.T) {
	s := embednats.RunTest(t)
	if !s.Running() || s.NATS() == nil {
		t.Fatal("not running after start")
	}
	s.Shutdown()
	s.Shutdown() // twice is fine
	if s.Running() {
		t.Fatal("running after Shutdown")
	}
	_, err := nats.Connect(s.ClientURL(), nats.Timeout(time.Second))
	if !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("connect to a stopped server: %v, want ErrNoServers", err)
	}
}

func TestTwoServersHaveTheirOwnPorts(t *testing.T) {
	a := embednats.RunTest(t)
	b := embednats.RunTest(t)
	if a.ClientURL() == b.ClientURL() {
		t.Fatalf("both on %s", a.ClientURL())
	}
}

func TestTemporaryStoreIsRemoved(t *testing.T) {
	s, err := embednats.Start()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.StoreDir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("store %s still there after Close: %v", dir, err)
	}
}

func TestClusterKeepsAStreamAcrossItsLeadersRestart(t *testing.T) {
	c := embednats.RunTestCluster(t, 3)
	if n := len(c.Servers()); n != 3 || strings.Count(c.ClientURL(), ",") != 2 {
		t.Fatalf("%d servers, URL %q", n, c.ClientURL())
	}
	nc, err := nats.Connect(c.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	// A request sent while the servers elect or re-form routes may get no
	// answer: each try has its own timeout, and a message id makes a retry
	// of a publish that did land harmless.
	sent := 0
	publish := func(n int) {
		for end := sent + n; sent < end; {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, "t.x", []byte{byte(sent)}, jetstream.WithMsgID(strconv.Itoa(sent)))
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			sent++
		}
	}
	publish(10)
	leader := waitFor(ctx, t, func() *embednats.Server { return c.StreamLeader("T") })
	leader.Shutdown()
	publish(10) // the other two elect a leader and go on
	next := waitFor(ctx, t, func() *embednats.Server { return c.StreamLeader("T") })
	if next == leader {
		t.Fatal("a stopped server leads the stream")
	}
	if err := leader.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitJetStream(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted server catches up: three current replicas of 20 messages.
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := js.Stream(sctx, "T")
		cancel()
		if err == nil {
			info := st.CachedInfo()
			current := 0
			if info.Cluster != nil && info.Cluster.Leader != "" {
				current = 1
				for _, p := range info.Cluster.Replicas {
					if p.Current && !p.Offline {
						current++
					}
				}
			}
			if current == 3 && info.State.Msgs == 20 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("stream after its leader %s restarted: %v", leader.Name(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("leader %s stopped, %s took over, %s restarted and caught up", leader.Name(), next.Name(), leader.Name())
}

func waitFor[T comparable](ctx context.Context, t *testing.T, get func() T) T {
	t.Helper()
	var zero T
	for {
		if v := get(); v != zero {
			return v
		}
		if ctx.Err() != nil {
			t.Fatal("gave up waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkKVUpdate is what one compare-and-set of a ledger entry costs on
// one server writing as it does by default, on one server that syncs every
// write before acknowledging it (xnum dev --data, sync_interval: always),
// and on a three-server cluster with three replicas.
func BenchmarkKVUpdate(b *testing.B) {
	for _, bc := range []struct {
		name     string
		replicas int
		url      func(b *testing.B) string
	}{
		{"one server", 1, func(b *testing.B) string { return embednats.RunTest(b).ClientURL() }},
		{"one server, sync always", 1, func(b *testing.B) string { return embednats.RunTest(b, embednats.WithSyncAlways()).ClientURL() }},
		{"three servers, R3", 3, func(b *testing.B) string { return embednats.RunTestCluster(b, 3).ClientURL() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nc, err := nats.Connect(bc.url(b))
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B", Replicas: bc.replicas})
			if err != nil {
				b.Fatal(err)
			}
			rev, err := kv.Put(ctx, "k", []byte("v"))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if rev, err = kv.Update(ctx, "k", []byte("v"), rev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
