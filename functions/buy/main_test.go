package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/embednats/embednatstest"
	"github.com/xnum-dev/xnum/internal/function/functiontest"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1"
	"github.com/xnum-dev/xnum/internal/trigger/fcgo1/fcgo1test"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

var bin = functiontest.Binary{Name: "buy", Wire: wire}

// onFC sets in e the variables FC sets in the instances of function name,
// and the function's XNUM_BUY_ROLE.
func onFC(e testutil.Env, name, role string) {
	maps.Copy(e, testutil.Env{}.With(testutil.OnFC...).With(config.FCFunctionName, name, buy.EnvRole, role))
}

// stack is a NATS server and an emulator, and the environment that points
// the buy binary at them.
func stack(t *testing.T, opts ...emulator.Option) (*emulatortest.Server, testutil.Env) {
	t.Helper()
	ns := embednats.RunTest(t)
	emu := emulatortest.NewServer(t, opts...)
	return emu, testutil.Env(emu.AliyunEnv()).With(config.NATSURL, ns.ClientURL(), buy.EnvQPS, "0")
}

// waitOrder polls GET /orders/{id} until the order reaches status.
func waitOrder(t *testing.T, base, id, status string) intake.Order {
	t.Helper()
	var o intake.Order
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, body := testutil.Do(t, "GET", base+"/orders/"+id, "")
		if resp.StatusCode == 200 && json.Unmarshal([]byte(body), &o) == nil && o.Status == status {
			return o
		}
	}
	t.Fatalf("order %s did not become %s; last seen %+v", id, status, o)
	return o
}

func order(id string, qty int) string {
	return fmt.Sprintf(`{"orderId":%q,"poolKey":"FC100000000000001","city":"杭州","specId":1,"quantity":%d}`, id, qty)
}

// Run alone, off FC: the routes take an order and the built-in consumer
// buys it; a duplicate POST buys nothing more.
func TestHTTPWithConsumer(t *testing.T) {
	emu, e := stack(t)
	base := bin.Start(t, e, io.Discard)

	resp, body := testutil.Do(t, "POST", base+"/orders", order("o-http-1", 3))
	if resp.StatusCode != 202 || resp.Header.Get("Location") != "/orders/o-http-1" {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	if resp, _ := testutil.Do(t, "POST", base+"/orders", order("o-http-1", 3)); resp.StatusCode != 200 {
		t.Fatalf("the same order again: %d, want 200", resp.StatusCode)
	}
	if resp, _ := testutil.Do(t, "POST", base+"/orders", order("o-http-1", 2)); resp.StatusCode != 409 {
		t.Fatalf("the same id with another body: %d, want 409", resp.StatusCode)
	}
	o := waitOrder(t, base, "o-http-1", "completed")
	if len(o.Numbers) != 3 || len(emu.Dypls().Purchases()) != 3 {
		t.Fatalf("completed with %v; the emulator sold %d", o.Numbers, len(emu.Dypls().Purchases()))
	}
	if resp, _ := testutil.Do(t, "GET", base+"/orders/nope", ""); resp.StatusCode != 404 {
		t.Errorf("unknown order: %d", resp.StatusCode)
	}
}

// startFC runs the binary as FC runs it (FC's variables set) in role.
func startFC(t *testing.T, e testutil.Env, role string) string {
	t.Helper()
	fe := maps.Clone(e)
	onFC(fe, "xnum-buy-"+role, role)
	base := bin.Start(t, fe, io.Discard)
	// Answered once the function is up, its JetStream set-up done: two
	// processes setting up a new server at the same moment can collide.
	testutil.Do(t, "GET", base+"/", "")
	return base
}

// On FC, as s.yaml deploys it: the intake takes orders, the worker buys
// them. There is no consumer: a timer invocation drains the queue, and an
// event invocation (here EventBridge from MNS) carries an order itself. The
// role's STS credentials come in the request headers and are the ones used.
func TestFCEvents(t *testing.T) {
	emu, e := stack(t, emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	// The credentials FC put in the environment at start have expired.
	e[aliyun.EnvAccessKeyID], e[aliyun.EnvAccessKeySecret] = "STS.old", "old-secret"
	intakeURL, workerURL := startFC(t, e, "intake"), startFC(t, e, "worker")
	sts := []string{"x-fc-access-key-id", "STS.role", "x-fc-access-key-secret", "role-secret", "x-fc-security-token", "role-token"}

	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-fc-timer", 2)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(emu.Dypls().Purchases()); n != 0 {
		t.Fatalf("bought %d numbers with no consumer and no invocation", n)
	}
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	resp, body := testutil.Do(t, "POST", workerURL+"/invoke", timer, append(sts, "x-fc-request-id", "fc-timer-1")...)
	if resp.StatusCode != 200 || resp.Header.Get("x-fc-status") != "200" {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, intakeURL, "o-fc-timer", "completed")

	// An order from the MNS queue reaches the intake (s.yaml's trigger is
	// there), which only hands it to JetStream: the invocation buys nothing
	// and so can never hold up the event stream; a message that is no order
	// is dropped (logged), not failed. The worker buys it from JetStream.
	calls := emu.Dypls().Calls("BuySecretNo")
	resp, body = testutil.Do(t, "POST", intakeURL+"/invoke", mnsEvent(order("o-fc-mns", 1), "not an order"), append(sts, "x-fc-request-id", "fc-mns-1")...)
	if resp.StatusCode != 200 || resp.Header.Get("x-fc-status") != "200" {
		t.Fatalf("EventBridge invocation: %d %s", resp.StatusCode, body)
	}
	if n := emu.Dypls().Calls("BuySecretNo"); n != calls {
		t.Fatalf("the EventBridge invocation made %d buy calls", n-calls)
	}
	resp, body = testutil.Do(t, "POST", workerURL+"/invoke", timer, append(sts, "x-fc-request-id", "fc-timer-2")...)
	if resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, intakeURL, "o-fc-mns", "completed")
	if n := len(emu.Dypls().Purchases()); n != 3 {
		t.Fatalf("the emulator sold %d numbers for 2+1 ordered", n)
	}

	// Without the role's headers the stale environment keys are refused:
	// the invocation fails (404, x-fc-status 404) and FC will retry it.
	resp, _ = testutil.Do(t, "POST", workerURL+"/invoke", order("o-fc-nocreds", 1), "x-fc-request-id", "fc-direct-1")
	if resp.StatusCode != 404 || resp.Header.Get("x-fc-status") != "404" {
		t.Fatalf("direct invocation without credentials: %d", resp.StatusCode)
	}
}

// The intake never buys: it starts without Alibaba Cloud credentials (no
// wake-ups configured), hands a queue's orders to JetStream, and refuses
// every event invocation that would buy (a timer's drain, a direct order)
// with a clear error; the worker serves no routes.
func TestRoles(t *testing.T) {
	emu, e := stack(t)
	noKeys := maps.Clone(e)
	delete(noKeys, aliyun.EnvAccessKeyID)
	delete(noKeys, aliyun.EnvAccessKeySecret)
	intakeURL, workerURL := startFC(t, noKeys, "intake"), startFC(t, e, "worker")

	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-role-1", 1)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders to the intake: %d %s", resp.StatusCode, body)
	}
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	for _, event := range []string{timer, order("o-role-3", 1)} {
		resp, body := testutil.Do(t, "POST", intakeURL+"/invoke", event, "x-fc-request-id", "fc-intake-1")
		var eb struct {
			Error struct{ Code, Message string }
		}
		if resp.StatusCode != 404 || resp.Header.Get("x-fc-status") != "404" || json.Unmarshal([]byte(body), &eb) != nil ||
			eb.Error.Code != "InvalidParameter" || !strings.Contains(eb.Error.Message, "XNUM_BUY_ROLE=intake") {
			t.Fatalf("event invocation of the intake: %d %s", resp.StatusCode, body)
		}
	}
	if resp, body := testutil.Do(t, "POST", intakeURL+"/invoke", mnsEvent(order("o-role-2", 1)), "x-fc-request-id", "fc-intake-2"); resp.StatusCode != 200 {
		t.Fatalf("an MNS order handed off by the intake: %d %s", resp.StatusCode, body)
	}
	if n := emu.Dypls().Calls("BuySecretNo") + emu.Dypls().Calls("QuerySecretNoRemain"); n != 0 {
		t.Fatalf("the intake made %d Dyplsapi calls", n)
	}
	if _, o := testutil.Do(t, "GET", intakeURL+"/orders/o-role-1", ""); !strings.Contains(string(o), `"status":"accepted"`) {
		t.Fatalf("the order after event invocations of the intake: %s", o)
	}
	for _, r := range []struct{ method, path, body string }{{"POST", "/orders", order("o-role-4", 1)}, {"GET", "/orders/o-role-1", ""}} {
		if resp, body := testutil.Do(t, r.method, workerURL+r.path, r.body); resp.StatusCode != 404 {
			t.Errorf("%s %s on the worker: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
	if resp, body := testutil.Do(t, "POST", workerURL+"/invoke", timer, "x-fc-request-id", "fc-worker-1"); resp.StatusCode != 200 {
		t.Fatalf("the worker's drain: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, intakeURL, "o-role-1", "completed")
	waitOrder(t, intakeURL, "o-role-2", "completed")
}

// mnsEvent is EventBridge's event-streaming batch from the orders' MNS
// queue trigger, one message per body.
func mnsEvent(bodies ...string) string { return mnsEventOf("orders-mns", "xnum-orders", bodies...) }

// mnsEventOf is EventBridge's event-streaming batch from the MNS queue
// trigger named trigger on queue.
func mnsEventOf(trigger, queue string, bodies ...string) string {
	var evs []string
	for i, b := range bodies {
		evs = append(evs, fmt.Sprintf(`{"id":"e-%d","source":"MNS-Function-%s","specversion":"1.0","type":"mns:Queue:SendMessage","datacontenttype":"application/json; charset=utf-8","subject":"acs:mns:cn-hangzhou:123:queues/%s","time":"2026-11-22T07:49:00Z","aliyunaccountid":"123","aliyunpublishtime":"2026-11-22T07:49:00Z","aliyuneventbusname":"default","aliyunregionid":"cn-hangzhou","data":{"requestId":"r-%d","messageId":"m-%d","messageBody":%s}}`, i, trigger, queue, i, i, mustQuote(b)))
	}
	return "[" + strings.Join(evs, ",") + "]"
}

// On FC a buy whose answer was lost settles itself when its number report
// comes through the EventBridge trigger of the reports' MNS queue: the
// invocation stores the report and settles the attempt, and the next drain
// buys the rest. A message of that queue that is no valid report is
// dropped, not failed; nothing is ever bought again for the lost answer.
func TestFCReportSettlesADoubt(t *testing.T) {
	emu, e := stack(t)
	onFC(e, "xnum-buy-worker", "all")
	base := bin.Start(t, e, io.Discard)
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`

	emu.Faults().Set("BuySecretNo", fault.Fault{CutRate: 1})
	if resp, body := testutil.Do(t, "POST", base+"/orders", order("o-lost", 2)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	if resp, body := testutil.Do(t, "POST", base+"/invoke", timer); resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, base, "o-lost", "in_doubt")
	emu.Faults().Set("BuySecretNo", fault.Fault{})
	sold := emu.Dypls().Purchases()
	if len(sold) != 1 {
		t.Fatalf("sold %+v", sold)
	}
	report, _ := json.Marshal(emu.Dypls().Reports()[0])
	bad := `{"secretNo":"17000000001","operatingTime":"yesterday","status":1}`
	resp, body := testutil.Do(t, "POST", base+"/invoke", mnsEventOf("reports-mns", "xnum-number-reports", string(report), bad))
	if resp.StatusCode != 200 || resp.Header.Get("x-fc-status") != "200" {
		t.Fatalf("reports invocation: %d %s", resp.StatusCode, body)
	}
	if o := waitOrder(t, base, "o-lost", "accepted"); len(o.Numbers) != 1 || o.Numbers[0] != sold[0].SecretNo {
		t.Fatalf("after the report: %+v", o)
	}
	if resp, body := testutil.Do(t, "POST", base+"/invoke", timer); resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	o := waitOrder(t, base, "o-lost", "completed")
	if n := len(emu.Dypls().Purchases()); n != 2 || len(o.Numbers) != 2 || o.Numbers[0] != sold[0].SecretNo {
		t.Fatalf("completed with %v; the emulator sold %d", o.Numbers, n)
	}
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// On Lambda, SQS batches go through the same worker.
func TestLambdaSQS(t *testing.T) {
	emu, e := stack(t)
	api := bin.StartLambda(t, e)

	batch := fmt.Sprintf(`{"Records":[
		{"messageId":"m-1","receiptHandle":"h1","body":%s,"attributes":{},"messageAttributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:orders","awsRegion":"us-east-2"},
		{"messageId":"m-2","receiptHandle":"h2","body":%s,"attributes":{},"messageAttributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:orders","awsRegion":"us-east-2"},
		{"messageId":"m-3","receiptHandle":"h3","body":%s,"attributes":{},"messageAttributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:orders","awsRegion":"us-east-2"}]}`,
		mustQuote(order("o-sqs-1", 1)), mustQuote(order("o-sqs-2", 2)), mustQuote(order("o-sqs-1", 1)))
	res := api.Invoke(t, []byte(batch))
	var out struct {
		BatchItemFailures []struct{ ItemIdentifier string } `json:"batchItemFailures"`
	}
	if res.Kind != "response" || json.Unmarshal(res.Body, &out) != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("SQS batch: %s %s", res.Kind, res.Body)
	}
	if n := len(emu.Dypls().Purchases()); n != 3 {
		t.Fatalf("the emulator sold %d numbers for orders of 1 and 2 (one delivered twice)", n)
	}
}

func TestConfigErrors(t *testing.T) {
	_, e := stack(t)
	for _, tc := range []struct {
		name, variable, value string
		with                  []string // more variables
	}{
		{"no NATS", config.NATSURL, "", nil},
		{"bad QPS", buy.EnvQPS, "fast", nil},
		{"bad consumer flag", buy.EnvConsumer, "maybe", nil},
		{"no Alibaba key", aliyun.EnvAccessKeyID, "", nil},
		{"bad role", buy.EnvRole, "buyer", nil},
		{"no role on FC", buy.EnvRole, "", testutil.OnFC},
		{"consumer in the intake", buy.EnvConsumer, "true", []string{buy.EnvRole, "intake"}},
	} {
		t.Run(tc.name, func(t *testing.T) { bin.Refuses(t, e.With(tc.with...).With(tc.variable, tc.value), tc.variable) })
	}
}

// FC tells a custom runtime no deadline: XNUM_EVENT_TIMEOUT gives one, and a
// drain with too little time left for a buy starts none (rather than being
// killed mid-buy, which would leave the order in doubt).
func TestFCDrainKeepsToTheEventTimeout(t *testing.T) {
	emu, e := stack(t)
	e[buy.EnvEventTimeout] = "2s" // less than a buy may take (20 s)
	base := startFC(t, e, "all")
	if resp, body := testutil.Do(t, "POST", base+"/orders", order("o-short", 1)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	resp, body := testutil.Do(t, "POST", base+"/invoke", timer)
	if resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	if n := emu.Dypls().Calls("BuySecretNo"); n != 0 {
		t.Fatalf("%d buy calls in an invocation with 2 s to go", n)
	}
	if _, o := testutil.Do(t, "GET", base+"/orders/o-short", ""); !strings.Contains(string(o), `"status":"accepted"`) {
		t.Fatalf("the order after a short drain: %s", o)
	}
}

// Where FC gives a deadline it is the bound of an event invocation, shorter
// or longer than XNUM_EVENT_TIMEOUT, which applies only without one.
func TestFCDeadlineOverEventTimeout(t *testing.T) {
	for _, tc := range []struct {
		name         string
		eventTimeout string
		header       []string
		buys         int
	}{
		{"FC's deadline is too short for a buy", "110s", []string{"x-fc-function-deadline", strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)}, 0},
		{"FC's timeout leaves time for a buy", "2s", []string{"x-fc-function-timeout", "120"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu, e := stack(t)
			onFC(e, "xnum-buy-worker", "all")
			e[buy.EnvEventTimeout] = tc.eventTimeout
			base := bin.Start(t, e, io.Discard)
			if resp, body := testutil.Do(t, "POST", base+"/orders", order("o-deadline", 1)); resp.StatusCode != 202 {
				t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
			}
			timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
			if resp, body := testutil.Do(t, "POST", base+"/invoke", timer, tc.header...); resp.StatusCode != 200 {
				t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
			}
			if n := emu.Dypls().Calls("BuySecretNo"); n != tc.buys {
				t.Fatalf("%d buy calls, want %d", n, tc.buys)
			}
		})
	}
}

// A start that cannot reach NATS still serves: FC's initializer succeeds,
// the routes answer the contract's 503 and events fail (FC retries them);
// once NATS is back the next request sets the function up.
func TestNATSUnreachableAtStart(t *testing.T) {
	ns := embednats.RunTest(t)
	emu := emulatortest.NewServer(t)
	e := testutil.Env{
		aliyun.EnvAccessKeyID:     emulator.DefaultAccessKeyID,
		aliyun.EnvAccessKeySecret: emulator.DefaultAccessKeySecret,
		aliyun.EnvEndpoint:        emu.URL,
		config.NATSURL:            ns.ClientURL(),
		buy.EnvQPS:                "0",
	}
	onFC(e, "xnum-buy", "all")
	ns.Shutdown()
	base := bin.Start(t, e, io.Discard)

	if resp, body := testutil.Do(t, "POST", base+"/initialize", "", "x-fc-request-id", "init-1"); resp.StatusCode != 200 {
		t.Fatalf("initializer without NATS: %d %s", resp.StatusCode, body)
	}
	for _, r := range []struct{ method, path, body string }{{"POST", "/orders", order("o-late", 1)}, {"GET", "/orders/o-late", ""}} {
		resp, body := testutil.Do(t, r.method, base+r.path, r.body)
		var eb httpjson.ErrorBody
		if resp.StatusCode != 503 || json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code != "Unavailable" || eb.Error.RequestID == "" {
			t.Errorf("%s %s without NATS: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
	timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
	if resp, _ := testutil.Do(t, "POST", base+"/invoke", timer); resp.StatusCode != 404 || resp.Header.Get("x-fc-status") != "404" {
		t.Errorf("an event without NATS: %d, want a function error", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ns.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	var body []byte
	for ctx.Err() == nil { // attempts are spaced a second apart
		if resp, body = testutil.Do(t, "POST", base+"/orders", order("o-late", 1)); resp.StatusCode == 202 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.StatusCode != 202 {
		t.Fatalf("POST /orders once NATS is back: %d %s", resp.StatusCode, body)
	}
	if resp, body := testutil.Do(t, "POST", base+"/invoke", timer); resp.StatusCode != 200 {
		t.Fatalf("timer invocation: %d %s", resp.StatusCode, body)
	}
	waitOrder(t, base, "o-late", "completed")
}

// On FC's go1 runtime (FC_RUNTIME_API) the same binary takes orders through
// HTTP-trigger events, sets NATS up in the initializer, buys on a timer
// invocation with the role's credentials of the invocation, hands MNS
// orders to JetStream, and drains NATS at preStop.
func TestFCGo1(t *testing.T) {
	emu, e := stack(t, emulator.WithSTSToken("STS.role", "role-secret", "role-token"))
	onFC(e, "xnum-buy-worker", "all")
	e[aliyun.EnvAccessKeyID], e[aliyun.EnvAccessKeySecret] = "STS.old", "old-secret"
	out := &testutil.SyncBuffer{}
	api := bin.StartGo1(t, e, out)
	role := map[string]string{"x-fc-access-key-id": "STS.role", "x-fc-access-key-secret": "role-secret", "x-fc-security-token": "role-token"}
	get := func(id string) fcgo1test.HTTPResponse {
		return api.Invoke(t, fcgo1test.Invocation{Payload: fcgo1test.HTTPEvent("GET", "/orders/"+id, nil, "")}).HTTP(t)
	}

	if res := api.Invoke(t, fcgo1test.Invocation{Type: fcgo1.TypeInitializer, RequestID: "go1-init"}); res.Kind != "response" {
		t.Fatalf("initializer: %s %s", res.Kind, res.Body)
	}
	if !strings.Contains(out.String(), "NATS JetStream set up") {
		t.Errorf("the initializer did not set NATS up:\n%s", out.String())
	}
	resp := api.Invoke(t, fcgo1test.Invocation{Payload: fcgo1test.HTTPEvent("POST", "/orders", map[string]string{"Idempotency-Key": "o-go1-http"}, order("", 2))}).HTTP(t)
	if resp.StatusCode != 202 || resp.Headers["Location"] != "/orders/o-go1-http" {
		t.Fatalf("POST /orders on go1: %+v", resp)
	}
	if res := api.Invoke(t, fcgo1test.Invocation{Payload: []byte(mnsEvent(order("o-go1-mns", 1)))}); res.Kind != "response" {
		t.Fatalf("EventBridge invocation: %s %s", res.Kind, res.Body)
	}
	timer := []byte(`{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`)
	if res := api.Invoke(t, fcgo1test.Invocation{Payload: timer, Header: role, Timeout: 2 * time.Minute}); res.Kind != "response" {
		t.Fatalf("timer invocation: %s %s", res.Kind, res.Body)
	}
	for id, n := range map[string]int{"o-go1-http": 2, "o-go1-mns": 1} {
		var o intake.Order
		if resp := get(id); resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &o) != nil || o.Status != "completed" || len(o.Numbers) != n {
			t.Errorf("order %s after the drain: %+v", id, resp)
		}
	}
	if n := len(emu.Dypls().Purchases()); n != 3 {
		t.Errorf("the emulator sold %d numbers for 2+1 ordered", n)
	}
	// Without the role's credentials the stale keys are refused: the
	// invocation fails and FC will retry it.
	if doc := api.Invoke(t, fcgo1test.Invocation{Payload: []byte(order("o-go1-direct", 1))}).Error(t); doc.Type != "Unavailable" {
		t.Errorf("a direct order without credentials: %+v", doc)
	}
	if res := api.Invoke(t, fcgo1test.Invocation{Type: fcgo1.TypePreStop, RequestID: "go1-prestop"}); res.Kind != "response" {
		t.Errorf("preStop: %s %s", res.Kind, res.Body)
	}
	for _, line := range []string{"FC Initialize End RequestId: go1-init\n", "FC PreStop End RequestId: go1-prestop\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("stdout lacks %q", line)
		}
	}
	if strings.Contains(out.String(), "role-secret") || strings.Contains(out.String(), "role-token") {
		t.Errorf("a secret reached stdout")
	}
}

// The NATS account of the README's Security section, read from it, is all
// the buy functions need as s.yaml deploys them (TLS from a private CA, each
// with its own .creds), and no more.
func TestNATSAccountOfTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	srv := embednatstest.Secure(t, embednatstest.UsersFromNSC(t, string(readme))...)
	emu, e := stack(t)
	e[config.NATSURL], e[config.NATSCA] = srv.ClientURL(), srv.CA
	e[buy.EnvQPS] = "50" // the worker's buys take slots of the shared rate
	as := func(user string) testutil.Env { return e.With(config.NATSCreds, srv.Creds[user]) }
	// The operator sets JetStream up; the functions only find it.
	admin, err := config.LoadNATS(as("xnum-admin").Lookup)
	if err != nil {
		t.Fatal(err)
	}
	anc, err := nats.Connect(admin.URL, admin.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(anc.Close)
	ajs, _ := jetstream.New(anc)
	plan, err := queue.PlanSetup(context.Background(), ajs)
	if err == nil {
		err = plan.Apply(context.Background(), nil)
	}
	if err != nil {
		t.Fatalf("xnum setup as xnum-admin: %v", err)
	}
	intakeURL := startFC(t, as("xnum-intake"), "intake")
	workerURL := startFC(t, as("xnum-worker"), "worker")
	type conn struct {
		js     jetstream.JetStream
		denied chan error // the server's permission violations
	}
	connect := func(user string) conn {
		n, err := config.LoadNATS(as(user).Lookup)
		if err != nil {
			t.Fatal(err)
		}
		c := conn{denied: make(chan error, 10)}
		nc, err := nats.Connect(n.URL, append(n.Options(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				c.denied <- err
			}
		}))...)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		c.js, _ = jetstream.New(nc)
		return c
	}
	ctx := context.Background()
	drain := func() {
		timer := `{"triggerTime":"2026-11-22T07:49:00Z","triggerName":"drain","payload":"drain"}`
		if resp, body := testutil.Do(t, "POST", workerURL+"/invoke", timer); resp.StatusCode != 200 {
			t.Fatalf("the worker's drain: %d %s", resp.StatusCode, body)
		}
	}

	// An order through the intake, one from another system.
	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-acct-1", 2)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	drain()
	waitOrder(t, intakeURL, "o-acct-1", "completed")
	if _, err := connect("xnum-producer").js.Publish(ctx, "xnum.orders.requested", []byte(order("o-acct-2", 1)), jetstream.WithMsgID("o-acct-2")); err != nil {
		t.Fatalf("the producer's order: %v", err)
	}
	drain()
	waitOrder(t, intakeURL, "o-acct-2", "completed")

	// A buy whose answer was lost, settled from the cloud's number report
	// through the worker's reports trigger.
	emu.Faults().Set("BuySecretNo", fault.Fault{CutRate: 1})
	if resp, body := testutil.Do(t, "POST", intakeURL+"/orders", order("o-acct-3", 1)); resp.StatusCode != 202 {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	drain()
	waitOrder(t, intakeURL, "o-acct-3", "in_doubt")
	emu.Faults().Set("BuySecretNo", fault.Fault{})
	reps := emu.Dypls().Reports()
	report, _ := json.Marshal(reps[len(reps)-1])
	if resp, body := testutil.Do(t, "POST", workerURL+"/invoke", mnsEventOf("reports-mns", "xnum-number-reports", string(report))); resp.StatusCode != 200 {
		t.Fatalf("reports invocation: %d %s", resp.StatusCode, body)
	}
	drain()
	waitOrder(t, intakeURL, "o-acct-3", "completed")
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("the functions needed more than their permissions:\n%s", strings.Join(v, "\n"))
	}

	// Beyond their permissions, the server refuses.
	denied := func(what string, c conn, f func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- f(ctx) }()
		select {
		case <-c.denied:
		case err := <-done:
			t.Errorf("%s: %v, want a permissions violation", what, err)
		case <-time.After(10 * time.Second):
			t.Errorf("%s: no permissions violation", what)
		}
	}
	worker, intake, producer := connect("xnum-worker"), connect("xnum-intake"), connect("xnum-producer")
	denied("the intake creates a stream", intake, func(ctx context.Context) error {
		_, err := intake.js.CreateStream(ctx, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"mine.>"}})
		return err
	})
	denied("the worker changes the stream", worker, func(ctx context.Context) error {
		st, err := worker.js.Stream(ctx, "XNUM")
		if err != nil {
			return err
		}
		cfg := st.CachedInfo().Config
		cfg.MaxAge = time.Hour
		_, err = worker.js.UpdateStream(ctx, cfg)
		return err
	})
	denied("the worker deletes the stream", worker, func(ctx context.Context) error { return worker.js.DeleteStream(ctx, "XNUM") })
	denied("the worker purges the ledger", worker, func(ctx context.Context) error {
		_, err := worker.js.Conn().Request("$JS.API.STREAM.PURGE.KV_XNUM_ORDERS", nil, 5*time.Second)
		return err
	})
	denied("the intake publishes a purchase", intake, func(ctx context.Context) error {
		_, err := intake.js.Publish(ctx, "xnum.numbers.purchased", []byte(`{}`))
		return err
	})
	denied("the producer writes the ledger", producer, func(ctx context.Context) error {
		_, err := producer.js.Publish(ctx, "$KV.XNUM_ORDERS.o-acct-1", []byte(`{}`))
		return err
	})
}
