package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
)

// On a three-server cluster: functions create the objects with three
// replicas when told to, xnum setup scales existing ones, and a function's
// start leaves an operator's replicas and settings alone.
func TestClusterReplicas(t *testing.T) {
	c := embednats.RunTestCluster(t, 3)
	_, js := testutil.JetStream(t, c.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	// A function with XNUM_NATS_REPLICAS=3 on an empty cluster.
	if _, err := queue.Setup(ctx, js, queue.WithReplicas(3)); err != nil {
		t.Fatal(err)
	}
	waitReplicas(ctx, t, js, 3)
	deleteAll(ctx, t, js)

	// A function with the default makes one replica of each; the operator
	// then runs xnum setup --replicas 3.
	if _, err := queue.Setup(ctx, js); err != nil {
		t.Fatal(err)
	}
	waitReplicas(ctx, t, js, 1)
	plan, err := queue.PlanSetup(ctx, js, queue.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	if err := plan.Apply(ctx, func(ch queue.Change) { applied = append(applied, ch.String()) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 7 {
		t.Fatalf("applied %q, want the seven objects scaled", applied)
	}
	for _, a := range applied {
		if !strings.HasPrefix(a, "update ") || !strings.HasSuffix(a, ": replicas 1 -> 3") {
			t.Fatalf("applied %q", a)
		}
	}
	waitReplicas(ctx, t, js, 3)

	// The operator tunes; functions keep starting with their defaults.
	tune(ctx, t, js)
	before := snapshot(ctx, t, js)
	q, err := queue.Setup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(ctx, t, js); after != before {
		t.Fatalf("a function's start changed the operator's objects:\n%s\n%s", before, after)
	}
	if q.Config.Replicas != 3 || q.Config.MaxDeliver != 7 {
		t.Fatalf("the function sees %+v", q.Config)
	}
	waitReplicas(ctx, t, js, 3)
	t.Logf("xnum setup --replicas 3: %d changes; a later start changed nothing", len(applied))
}

// waitReplicas waits until every object has n current replicas (the
// leader and n-1 followers).
func waitReplicas(ctx context.Context, t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for {
		var lagging []string
		for _, name := range streamNames {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			info := s.CachedInfo()
			if info.Config.Replicas != n || current(info.Cluster) != n {
				lagging = append(lagging, name)
			}
		}
		for _, sc := range consumerNames {
			con, err := js.Consumer(ctx, sc[0], sc[1])
			if err != nil {
				t.Fatalf("consumer %s/%s: %v", sc[0], sc[1], err)
			}
			info := con.CachedInfo()
			if current(info.Cluster) != n {
				lagging = append(lagging, sc[0]+"/"+sc[1])
			}
		}
		if len(lagging) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not %d current replicas: %q", n, lagging)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func current(ci *jetstream.ClusterInfo) int {
	if ci == nil || ci.Leader == "" {
		return 0
	}
	n := 1
	for _, p := range ci.Replicas {
		if p.Current && !p.Offline {
			n++
		}
	}
	return n
}

func deleteAll(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, name := range streamNames {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}
