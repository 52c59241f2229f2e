package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/queue"
)

// objectNames are the streams (buckets as their streams) and consumers
// Setup makes with the default options.
var (
	streamNames   = []string{queue.StreamName, queue.AdvisoryStreamName, queue.ReportsStreamName, "KV_" + queue.LedgerBucket, "KV_" + queue.LimitsBucket}
	consumerNames = [][2]string{{queue.StreamName, queue.ConsumerName}, {queue.AdvisoryStreamName, queue.AdvisoryConsumer}}
)

// snapshot is every object's configuration, to tell whether anything
// changed.
func snapshot(ctx context.Context, t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	var b strings.Builder
	for _, name := range streamNames {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info := s.CachedInfo()
		json.NewEncoder(&b).Encode([]any{info.Config, info.Created})
	}
	for _, sc := range consumerNames {
		var info *jetstream.ConsumerInfo
		if c, err := js.Consumer(ctx, sc[0], sc[1]); err == nil {
			info = c.CachedInfo()
		} else if c, err := js.PushConsumer(ctx, sc[0], sc[1]); err == nil {
			info = c.CachedInfo()
		} else {
			t.Fatalf("consumer %s/%s: %v", sc[0], sc[1], err)
		}
		json.NewEncoder(&b).Encode([]any{info.Config, info.Created})
	}
	return b.String()
}

func TestSetupCreatesWhatIsMissing(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)

	q, err := queue.Setup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if q.Stream == nil || q.Consumer == nil || q.Advisories == nil || q.Reports == nil || q.Ledger == nil || q.Limits == nil {
		t.Fatalf("queue %+v: an object is missing", q)
	}
	si, err := q.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := si.Config
	if c.Name != queue.StreamName || c.Storage != jetstream.FileStorage || c.Duplicates != 10*time.Minute ||
		strings.Join(c.Subjects, ",") != "xnum.orders.>,xnum.numbers.>" || c.Replicas != 1 {
		t.Fatalf("stream config %+v", c)
	}
	ci, err := q.Consumer.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc := ci.Config
	if cc.Durable != queue.ConsumerName || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.FilterSubject != events.SubjectOrderRequested ||
		cc.MaxDeliver != 10 || cc.AckWait != 30*time.Second {
		t.Fatalf("consumer config %+v", cc)
	}
	ri, err := q.Reports.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc := ri.Config; rc.Name != queue.ReportsStreamName || strings.Join(rc.Subjects, ",") != events.SubjectNumberReports ||
		rc.MaxAge != 30*24*time.Hour || rc.Duplicates != 10*time.Minute {
		t.Fatalf("reports stream config %+v", rc)
	}
	for _, kv := range []jetstream.KeyValue{q.Ledger, q.Limits} {
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{queue.LedgerBucket: 16, queue.LimitsBucket: 1}[st.Bucket()]; want == 0 || int64(st.History()) != want {
			t.Fatalf("bucket %s history %d", st.Bucket(), st.History())
		}
	}

	// Everything exists now: a second start only reads.
	before := snapshot(ctx, t, js)
	if _, err := queue.Setup(ctx, js); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	if after := snapshot(ctx, t, js); after != before {
		t.Fatalf("a second Setup changed the objects:\n%s\n%s", before, after)
	}
}

// An operator tunes the objects; a function starting with other options
// leaves them as they are and works with the operator's values.
func TestSetupLeavesAnOperatorsSettings(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	if _, err := queue.Setup(ctx, js); err != nil {
		t.Fatal(err)
	}
	tune(ctx, t, js)
	before := snapshot(ctx, t, js)

	q, err := queue.Setup(ctx, js, queue.WithMaxDeliver(3), queue.WithAckWait(2*time.Second),
		queue.WithLedgerHistory(32), queue.WithDuplicateWindow(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(ctx, t, js); after != before {
		t.Fatalf("a function's start changed the operator's settings:\n%s\n%s", before, after)
	}
	if c := q.Config; c.MaxDeliver != 7 || c.AckWait != time.Minute || c.MaxAge != 7*24*time.Hour || c.LedgerHistory != 5 {
		t.Fatalf("the queue works with %+v, not the objects' settings", c)
	}
}

// tune changes what an operator may: ages, history, ack wait, max deliver.
func tune(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	t.Helper()
	st, err := js.Stream(ctx, queue.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	sc := st.CachedInfo().Config
	sc.MaxAge = 7 * 24 * time.Hour
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	kv, err := js.Stream(ctx, "KV_"+queue.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	kc := kv.CachedInfo().Config
	kc.MaxMsgsPerSubject = 5
	if _, err := js.UpdateStream(ctx, kc); err != nil {
		t.Fatal(err)
	}
	con, err := js.Consumer(ctx, queue.StreamName, queue.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	cc := con.CachedInfo().Config
	cc.MaxDeliver, cc.AckWait = 7, time.Minute
	if _, err := js.UpdateConsumer(ctx, queue.StreamName, cc); err != nil {
		t.Fatal(err)
	}
}

// Objects that lack what the code needs stop a function's start with one
// message naming the lack, and change nothing; xnum setup's plan fixes what
// NATS can change in place and refuses the rest.
func TestSetupStopsOnWhatTheCodeNeeds(t *testing.T) {
	editStream := func(name string, edit func(*jetstream.StreamConfig)) func(context.Context, jetstream.JetStream) error {
		return func(ctx context.Context, js jetstream.JetStream) error {
			st, err := js.Stream(ctx, name)
			if err != nil {
				return err
			}
			c := st.CachedInfo().Config
			edit(&c)
			_, err = js.UpdateStream(ctx, c)
			return err
		}
	}
	editConsumer := func(stream, name string, edit func(*jetstream.ConsumerConfig)) func(context.Context, jetstream.JetStream) error {
		return func(ctx context.Context, js jetstream.JetStream) error {
			con, err := js.Consumer(ctx, stream, name)
			if err != nil {
				return err
			}
			c := con.CachedInfo().Config
			edit(&c)
			_, err = js.UpdateConsumer(ctx, stream, c)
			return err
		}
	}
	// recreate replaces a consumer with one NATS cannot turn back in place.
	recreate := func(edit func(*jetstream.ConsumerConfig)) func(context.Context, jetstream.JetStream) error {
		return func(ctx context.Context, js jetstream.JetStream) error {
			con, err := js.Consumer(ctx, queue.StreamName, queue.ConsumerName)
			if err != nil {
				return err
			}
			c := con.CachedInfo().Config
			if err := js.DeleteConsumer(ctx, queue.StreamName, queue.ConsumerName); err != nil {
				return err
			}
			edit(&c)
			_, err = js.CreateConsumer(ctx, queue.StreamName, c)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		break_ func(context.Context, jetstream.JetStream) error
		want   string
		fixed  bool // xnum setup can fix it in place
	}{
		{"stream without the number subjects", editStream(queue.StreamName, func(c *jetstream.StreamConfig) { c.Subjects = []string{"xnum.orders.>"} }),
			"stream XNUM needs subject xnum.numbers.> (has xnum.orders.>)", true},
		{"stream on narrower subjects", editStream(queue.StreamName, func(c *jetstream.StreamConfig) { c.Subjects = []string{"xnum.orders.requested", "xnum.numbers.>"} }),
			"stream XNUM needs subject xnum.orders.> (has xnum.orders.requested, xnum.numbers.>)", true},
		{"stream that does not ack publishes", editStream(queue.StreamName, func(c *jetstream.StreamConfig) { c.NoAck = true }),
			"stream XNUM needs acknowledged publishes", true},
		{"consumer of every order event", editConsumer(queue.StreamName, queue.ConsumerName, func(c *jetstream.ConsumerConfig) { c.FilterSubject = "xnum.orders.>" }),
			"consumer XNUM/xnum-buy needs filter subject xnum.orders.requested (has xnum.orders.>)", true},
		{"consumer delivering for ever", editConsumer(queue.StreamName, queue.ConsumerName, func(c *jetstream.ConsumerConfig) { c.MaxDeliver = -1 }),
			"consumer XNUM/xnum-buy needs a limited max deliver, at least 2 (has -1)", true},
		{"advisory stream on another subject", editStream(queue.AdvisoryStreamName, func(c *jetstream.StreamConfig) { c.Subjects = []string{"elsewhere"} }),
			"stream XNUM_ADVISORIES needs subject $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.XNUM.xnum-buy (has elsewhere)", true},
		{"consumer without acks", recreate(func(c *jetstream.ConsumerConfig) { c.AckPolicy = jetstream.AckNonePolicy }),
			"consumer XNUM/xnum-buy needs explicit acks (has AckNone): NATS cannot change it in place", false},
		{"push consumer", recreate(func(c *jetstream.ConsumerConfig) { c.DeliverSubject, c.MaxWaiting = "deliver.here", 0 }),
			"consumer XNUM/xnum-buy needs to be a pull consumer (has deliver subject deliver.here)", false},
		{"ledger written asynchronously", func(ctx context.Context, js jetstream.JetStream) error {
			st, err := js.Stream(ctx, "KV_"+queue.LedgerBucket)
			if err != nil {
				return err
			}
			c := st.CachedInfo().Config
			if err := js.DeleteStream(ctx, c.Name); err != nil {
				return err
			}
			c.PersistMode = jetstream.AsyncPersistMode
			_, err = js.CreateStream(ctx, c)
			return err
		}, "bucket XNUM_ORDERS needs persist mode default (a write is stored before it is acknowledged) (has async): NATS cannot change it in place", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := embednats.RunTest(t)
			_, js := connect(t, s)
			ctx := ctxT(t)
			if _, err := queue.Setup(ctx, js); err != nil {
				t.Fatal(err)
			}
			if err := tc.break_(ctx, js); err != nil {
				t.Fatal(err)
			}
			before := snapshot(ctx, t, js)
			_, err := queue.Setup(ctx, js)
			var mismatch *queue.MismatchError
			if !errors.As(err, &mismatch) || len(mismatch.Lacks) != 1 || !strings.HasPrefix(mismatch.Lacks[0], tc.want) ||
				!strings.Contains(err.Error(), "xnum setup") {
				t.Fatalf("Setup: %v, want one lack %q", err, tc.want)
			}
			if after := snapshot(ctx, t, js); after != before {
				t.Fatalf("a refused Setup changed the objects")
			}

			plan, err := queue.PlanSetup(ctx, js)
			if err != nil {
				t.Fatal(err)
			}
			if after := snapshot(ctx, t, js); after != before {
				t.Fatalf("planning changed the objects")
			}
			if !tc.fixed {
				if len(plan.Problems) != 1 || !strings.HasPrefix(plan.Problems[0], tc.want) || len(plan.Changes) != 0 {
					t.Fatalf("plan %+v, want the problem %q", plan, tc.want)
				}
				if err := plan.Apply(ctx, nil); err == nil || !strings.Contains(err.Error(), "nothing changed") {
					t.Fatalf("Apply with a problem: %v", err)
				}
				if after := snapshot(ctx, t, js); after != before {
					t.Fatalf("a refused Apply changed the objects")
				}
				return
			}
			if len(plan.Problems) != 0 || len(plan.Changes) != 1 || plan.Changes[0].Action != "update" ||
				!strings.HasPrefix(plan.Changes[0].Details[0], strings.SplitN(tc.want, " needs ", 2)[1]) {
				t.Fatalf("plan %+v, want one update for %q", plan, tc.want)
			}
			var applied []string
			if err := plan.Apply(ctx, func(c queue.Change) { applied = append(applied, c.String()) }); err != nil {
				t.Fatal(err)
			}
			if len(applied) != 1 {
				t.Fatalf("applied %q", applied)
			}
			if _, err := queue.Setup(ctx, js); err != nil {
				t.Fatalf("Setup after xnum setup's fix: %v", err)
			}
			t.Logf("%s", applied[0])
		})
	}
}

func TestPlanCreatesAndChangesNothingUntilApplied(t *testing.T) {
	s := embednats.RunTest(t)
	_, js := connect(t, s)
	ctx := ctxT(t)
	plan, err := queue.PlanSetup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range plan.Changes {
		got = append(got, c.Action+" "+c.Object)
	}
	want := "create stream XNUM,create consumer XNUM/xnum-buy,create stream XNUM_ADVISORIES," +
		"create consumer XNUM_ADVISORIES/xnum-buy-max-deliveries,create stream XNUM_REPORTS,create bucket XNUM_ORDERS,create bucket XNUM_LIMITS"
	if strings.Join(got, ",") != want || len(plan.Problems) != 0 {
		t.Fatalf("plan on an empty server: %q, problems %q", got, plan.Problems)
	}
	if names := js.StreamNames(ctx); names.Err() != nil {
		t.Fatal(names.Err())
	} else {
		for n := range names.Name() {
			t.Fatalf("planning created stream %s", n)
		}
	}
	var applied []queue.Change
	if err := plan.Apply(ctx, func(c queue.Change) { applied = append(applied, c) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 7 || !strings.Contains(applied[0].String(), "subjects xnum.orders.>, xnum.numbers.>; replicas 1; file storage; max age 30d") {
		t.Fatalf("applied %v", applied)
	}
	if _, err := queue.Setup(ctx, js); err != nil {
		t.Fatal(err)
	}
	again, err := queue.PlanSetup(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes)+len(again.Problems) != 0 {
		t.Fatalf("a second plan: %+v", again)
	}
	// An operator's settings are not xnum setup's business either.
	tune(ctx, t, js)
	if again, err = queue.PlanSetup(ctx, js, queue.WithMaxDeliver(3)); err != nil || len(again.Changes) != 0 {
		t.Fatalf("plan after tuning: %+v, %v", again, err)
	}
}
