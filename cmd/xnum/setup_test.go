package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
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

// The README gives the functions' permissions as setup prints them.
func TestREADMEHasThePermissions(t *testing.T) {
	out, err := setup(t, "--permissions")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), out) {
		t.Fatalf("README.md does not have what xnum setup --permissions prints:\n%s", out)
	}
}

// On a three-server cluster with users: an operator runs xnum setup
// --replicas 3; the functions then run as a user with only the printed
// permissions — an order is bought and read back, the services answer —
// and no request of theirs meets a permissions violation. Before the
// operator's setup, that user cannot start the buy function and is told why.
func TestFunctionsRunWithThePrintedPermissions(t *testing.T) {
	perms, err := functionPermissions()
	if err != nil {
		t.Fatal(err)
	}
	c := embednats.RunTestCluster(t, 3, embednats.WithServerOptions(func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "admin-pw"},
			{Username: "fn", Password: "fn-pw", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: perms.Publish, Deny: perms.PublishDeny},
				Subscribe: &server.SubjectPermission{Allow: perms.Subscribe},
				Response:  &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION},
			}},
		}
	}))
	as := func(user, pw string) string {
		urls := strings.Split(c.ClientURL(), ",")
		for i, u := range urls {
			urls[i] = strings.Replace(u, "nats://", "nats://"+user+":"+pw+"@", 1)
		}
		return strings.Join(urls, ",")
	}
	var (
		mu         sync.Mutex
		violations []error
	)
	fnNC, fnJS := testutil.JetStream(t, as("fn", "fn-pw"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		violations = append(violations, err)
		mu.Unlock()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Before the operator (on a connection of its own: the violation stays
	// its last error).
	_, earlyJS := testutil.JetStream(t, as("fn", "fn-pw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = queue.Setup(short, earlyJS)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "stream XNUM is missing and this NATS user may not create it") || !strings.Contains(err.Error(), "xnum setup") {
		t.Fatalf("the functions' user on an empty cluster: %v", err)
	}

	t.Setenv(config.NATSCreds, "")
	t.Setenv(config.NATSReplicas, "")
	out, err := setup(t, "--nats", as("admin", "admin-pw"), "--replicas", "3")
	if err != nil || strings.Count(out, "; replicas 3") != 7 {
		t.Fatalf("xnum setup --replicas 3: %v\n%s", err, out)
	}

	emu := emulatortest.NewServer(t)
	ali := emu.Aliyun(t)
	fn, err := buy.New(ctx, fnJS, ali, buy.Config{QPS: 20, Consumer: true})
	if err != nil {
		t.Fatalf("the buy function as the functions' user: %v", err)
	}
	base := testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return function.Serve(ctx, fn.Function, function.WithListener(ln), function.WithNATS(fnNC), function.WithLogger(slog.New(slog.DiscardHandler)),
			function.WithLookup(func(string) (string, bool) { return "", false }))
	})
	for _, svc := range append(remain.New("aliyun", ali).Function().Services,
		pools.New("volcengine", emu.Volcengine(t)).Function().Services...) {
		ms, err := natsrpc.Start(fnNC, svc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ms.Stop() })
	}

	order := func(id string, qty int, status string) intake.Order {
		t.Helper()
		resp, err := http.Post(base+"/orders", "application/json", strings.NewReader(
			fmt.Sprintf(`{"orderId":%q,"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":%d}`, id, qty)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /orders: %d", resp.StatusCode)
		}
		var o intake.Order
		for o.Status != status {
			if ctx.Err() != nil {
				t.Fatalf("order %s: %+v, want %s", id, o, status)
			}
			time.Sleep(50 * time.Millisecond)
			resp, err := http.Get(base + "/orders/" + id)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			json.Unmarshal(b, &o)
		}
		return o
	}
	if o := order("perm-1", 2, "completed"); len(o.Numbers) != 2 || len(emu.Dypls().Purchases()) != 2 {
		t.Fatalf("order %+v, %d sold", o, len(emu.Dypls().Purchases()))
	}
	// A buy whose answer is lost goes in doubt, and the cloud's report of
	// its number, stored by the function's user, settles it.
	emu.Faults().Set("BuySecretNo", fault.Fault{CutRate: 1})
	order("perm-2", 1, "in_doubt")
	emu.Faults().Set("BuySecretNo", fault.Fault{})
	reps := emu.Dypls().Reports()
	body, _ := json.Marshal(reps[len(reps)-1])
	if _, err := reports.Publish(ctx, queue.NewPublisher(fnJS, queue.WithExpectStream(queue.ReportsStreamName)), body); err != nil {
		t.Fatalf("storing a report: %v", err)
	}
	for o, _ := fn.Ledger.Get(ctx, "perm-2"); o == nil || o.Status != ledger.StatusCompleted; o, _ = fn.Ledger.Get(ctx, "perm-2") {
		if ctx.Err() != nil {
			t.Fatalf("order perm-2 not settled from its report: %+v", o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What the metrics read: the ledger and the consumer.
	if _, err := fn.State(ctx); err != nil {
		t.Fatalf("the buy function's state: %v", err)
	}

	adminNC, _ := testutil.JetStream(t, as("admin", "admin-pw"))
	var r struct{ Amount int64 }
	if err := natsrpc.Request(ctx, adminNC, remain.Subject, map[string]any{"city": "全国", "specId": 1}, &r); err != nil || r.Amount == 0 {
		t.Fatalf("xnum.remain: %+v %v", r, err)
	}
	var p struct{ Total int }
	if err := natsrpc.Request(ctx, adminNC, pools.Subject, map[string]any{}, &p); err != nil || p.Total == 0 {
		t.Fatalf("xnum.pools: %+v %v", p, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 || fnNC.LastError() != nil {
		t.Fatalf("the functions' user met %v (last error %v)", violations, fnNC.LastError())
	}
}
