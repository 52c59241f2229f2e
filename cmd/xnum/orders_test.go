package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/pkg/buy"
	"github.com/xnum-dev/xnum/pkg/config"
	"github.com/xnum-dev/xnum/pkg/embednats"
	"github.com/xnum-dev/xnum/pkg/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	"github.com/xnum-dev/xnum/pkg/queue"
)

// ordersStack is what xnum dev runs, in the test: JetStream, the emulator
// and the buy worker; the environment points xnum orders at it.
func ordersStack(t *testing.T) (*emulatortest.Server, *buy.Function) {
	t.Helper()
	ns := embednats.RunTest(t)
	emu := emulatortest.NewServer(t)
	t.Setenv(config.NATSURL, ns.ClientURL())
	t.Setenv(config.AliyunAccessKeyID, emulator.DefaultAccessKeyID)
	t.Setenv(config.AliyunAccessKeySecret, emulator.DefaultAccessKeySecret)
	t.Setenv(config.AliyunEndpoint, emu.URL)
	t.Setenv(config.AliyunBuyQPS, "0")
	nc, err := queue.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	fn, err := buy.New(context.Background(), js, emu.Aliyun(t), buy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return emu, fn
}

func handleOrder(t *testing.T, fn *buy.Function, id string, qty int) {
	t.Helper()
	b, _ := json.Marshal(events.OrderRequested{OrderID: id, PoolKey: "FC100000000000001", City: "北京", SpecID: provider.SpecCarrier, Quantity: qty})
	if err := fn.Worker.HandleOrder(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func xnum(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestOrdersCommands(t *testing.T) {
	emu, fn := ordersStack(t)
	handleOrder(t, fn, "ord-ok", 2)
	emu.Faults().Set("BuySecretNo", fault.Fault{CutRate: 1})
	handleOrder(t, fn, "ord-doubt", 2)
	emu.Faults().Set("BuySecretNo", fault.Fault{})
	time.Sleep(10 * time.Millisecond)
	handleOrder(t, fn, "ord-later", 1)

	out, err := xnum(t, "orders", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "ord-later") || !strings.Contains(out, "in_doubt") {
		t.Fatalf("orders list, newest first:\n%s", out)
	}
	out, err = xnum(t, "orders", "list", "--status", "in_doubt", "--json")
	var listed []ledger.Order
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].OrderID != "ord-doubt" {
		t.Fatalf("orders list --status in_doubt --json: %v\n%s", err, out)
	}
	out, err = xnum(t, "orders", "show", "ord-doubt")
	if err != nil || !strings.Contains(out, "in doubt  attempt 1") || !strings.Contains(out, "numbers   0 of 2") {
		t.Fatalf("orders show:\n%s%v", out, err)
	}

	// Reconcile from the reports the cloud would send, fed from a file.
	var buf bytes.Buffer
	for _, r := range emu.Dypls().Reports() {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	os.WriteFile(file, buf.Bytes(), 0o600)
	out, err = xnum(t, "orders", "reconcile", "ord-doubt", "--reports", file, "--by", "ops-alice")
	if err != nil || !strings.Contains(out, "status    completed") || !strings.Contains(out, "by ops-alice") {
		t.Fatalf("orders reconcile --reports:\n%s%v", out, err)
	}
	if n := len(emu.Dypls().Purchases()); n != 5 {
		t.Fatalf("the emulator sold %d numbers for 2+2+1 ordered", n)
	}
}

func TestOrdersRefusals(t *testing.T) {
	_, fn := ordersStack(t)
	handleOrder(t, fn, "ord-ok", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orders"}, ""},
		{[]string{"orders", "frobnicate"}, "unknown orders command"},
		{[]string{"orders", "show"}, "which order"},
		{[]string{"orders", "show", "nope"}, "no order"},
		{[]string{"orders", "list", "--status", "lost"}, "unknown status"},
		{[]string{"orders", "reconcile", "ord-ok"}, "exactly one of"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought", "--release"}, "exactly one of"},
		{[]string{"orders", "reconcile", "ord-ok", "--why", "x", "--secret-no", "1"}, "--why goes with"},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought"}, "only an order in doubt"},
		{[]string{"orders", "reconcile", "ord-ok", "--release"}, "only a failed order"},
		{[]string{"orders", "reconcile", "ord-ok", "--reports", "/no/such/file"}, "no such file"},
		{[]string{"orders", "list", "--nats", "nats://127.0.0.1:1"}, "unavailable"},
	} {
		out, err := xnum(t, tc.args...)
		if err == nil || (tc.want != "" && !strings.Contains(out+err.Error(), tc.want)) {
			t.Errorf("xnum %v: %v\n%s", tc.args, err, out)
		}
	}
	o, err := fn.Ledger.Get(context.Background(), "ord-ok")
	if err != nil || o.Status != ledger.StatusCompleted || len(o.Settlements) != 0 {
		t.Fatalf("refusals changed the order: %+v %v", o, err)
	}
}
