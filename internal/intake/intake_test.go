package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/worker"
)

// env is the buy world of buytest with the intake served over HTTP on it.
type env struct {
	*buytest.Env
	t    *testing.T
	http *httptest.Server
}

func newEnv(t *testing.T, opts ...intake.Option) *env {
	t.Helper()
	e := &env{Env: buytest.New(t), t: t}
	e.serve(e.Ledger, e.Pub, opts...)
	return e
}

// serve (re)starts the HTTP server over l and pub.
func (e *env) serve(l *ledger.Ledger, pub intake.Publisher, opts ...intake.Option) {
	if e.http != nil {
		e.http.Close()
	}
	h := intake.New(l, pub, append([]intake.Option{intake.WithTimeout(2 * time.Second)}, opts...)...)
	e.http = httptest.NewServer(httpjson.Wrap(h, slog.New(slog.DiscardHandler)))
	e.t.Cleanup(e.http.Close)
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path, body string, hdr ...string) answer {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &a.body); err != nil {
		e.t.Fatalf("%s %s: body %q is not JSON", method, path, b)
	}
	return a
}

func (a answer) errCode() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) errMessage() string {
	e, _ := a.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// messages returns the order.requested messages in the stream.
func (e *env) messages() []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := context.Background()
	info, err := e.Queue.Stream.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := e.Queue.Stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if m.Subject == events.SubjectOrderRequested {
			out = append(out, m)
		}
	}
	return out
}

const good = `{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":2}`

func TestPostAndGet(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/orders", good)
	id, _ := a.body["orderId"].(string)
	if a.status != http.StatusAccepted || a.body["status"] != "accepted" || !strings.HasPrefix(id, "ord_") ||
		a.header.Get("Location") != "/orders/"+id || a.header.Get("X-Request-Id") == "" {
		t.Fatalf("POST: %d %v %v", a.status, a.header, a.raw)
	}
	msgs := e.messages()
	if len(msgs) != 1 || msgs[0].Header.Get(jetstream.MsgIDHeader) != id || msgs[0].Header.Get("Content-Type") != events.ContentType {
		t.Fatalf("messages %+v", msgs)
	}
	o, err := events.DecodeOrderRequested(msgs[0].Data)
	if err != nil || o.OrderID != id || o.Quantity != 2 || o.City != "杭州" {
		t.Fatalf("queued %+v %v", o, err)
	}

	g := e.do("GET", "/orders/"+id, "")
	if g.status != 200 || g.raw != `{"orderId":"`+id+`","status":"accepted","quantity":2,"numbers":[],"error":null}`+"\n" {
		t.Fatalf("GET: %d %s", g.status, g.raw)
	}
	entry, _ := e.Ledger.Get(context.Background(), id)
	if !entry.RequestPublished {
		t.Fatal("entry not marked published")
	}

	// The id may come in the body or in Idempotency-Key.
	b := e.do("POST", "/orders", `{"orderId":"mine-1",`+good[1:])
	k := e.do("POST", "/orders", good, "Idempotency-Key", "key-1")
	both := e.do("POST", "/orders", `{"orderId":"same-1",`+good[1:], "Idempotency-Key", "same-1")
	if b.body["orderId"] != "mine-1" || k.body["orderId"] != "key-1" || both.body["orderId"] != "same-1" ||
		b.status != 202 || k.status != 202 || both.status != 202 {
		t.Fatalf("ids: %s %s %s", b.raw, k.raw, both.raw)
	}
	if nf := e.do("GET", "/orders/unknown-1", ""); nf.status != 404 || nf.errCode() != "NotFound" {
		t.Fatalf("unknown id: %d %s", nf.status, nf.raw)
	}
}

func TestSameIDSameBodyIsTheSameOrder(t *testing.T) {
	e := newEnv(t)
	first := e.do("POST", "/orders", good, "Idempotency-Key", "idem-1")
	for range 3 {
		again := e.do("POST", "/orders", good, "Idempotency-Key", "idem-1")
		if again.status != http.StatusOK || again.body["orderId"] != "idem-1" || again.header.Get("Idempotent-Replayed") != "true" ||
			again.header.Get("Location") != "/orders/idem-1" {
			t.Fatalf("repeat: %d %v %s", again.status, again.header, again.raw)
		}
	}
	if first.status != 202 || len(e.messages()) != 1 {
		t.Fatalf("first %d, %d messages", first.status, len(e.messages()))
	}
	other := e.do("POST", "/orders", `{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":3}`, "Idempotency-Key", "idem-1")
	if other.status != http.StatusConflict || other.errCode() != "Conflict" || !strings.Contains(other.errMessage(), "idem-1") {
		t.Fatalf("other body: %d %s", other.status, other.raw)
	}
	if len(e.messages()) != 1 {
		t.Fatalf("%d messages after a conflict", len(e.messages()))
	}
	o, _ := e.Ledger.Get(context.Background(), "idem-1")
	if o.Quantity != 2 {
		t.Fatalf("the conflict changed the order: %+v", o)
	}
}

// TestRacingPosts: POSTs with one id and two bodies at once; exactly one
// order is made, the other body is refused with 409, one message is queued.
func TestRacingPosts(t *testing.T) {
	e := newEnv(t)
	bodies := []string{good, `{"poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":2}`}
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do("POST", "/orders", bodies[i%2], "Idempotency-Key", "race-1").status
		}()
	}
	wg.Wait()
	o, err := e.Ledger.Get(context.Background(), "race-1")
	if err != nil {
		t.Fatal(err)
	}
	winner := 0
	if o.Request.City == "北京" {
		winner = 1
	}
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if i%2 != winner && s != http.StatusConflict {
			t.Errorf("POST %d with the losing body: %d", i, s)
		}
	}
	// A POST with the winning body that comes while the winner is still
	// publishing publishes too (deduplicated) and answers 202 as well.
	if count[202] < 1 || count[409] != n/2 || count[200]+count[202] != n/2 || len(e.messages()) != 1 {
		t.Fatalf("statuses %v, %d messages", count, len(e.messages()))
	}
	t.Logf("%d racing POSTs: %v, 1 message", n, count)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	const pk = `"poolKey":"FC100000000000001"`
	cases := []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"empty body", ``, nil, 400, "InvalidParameter"},
		{"spaces", "   ", nil, 400, "InvalidParameter"},
		{"not json", `poolKey=1`, nil, 400, "InvalidParameter"},
		{"array", `[` + good + `]`, nil, 400, "InvalidParameter"},
		{"trailing data", good + `{}`, nil, 400, "InvalidParameter"},
		{"truncated", `{"poolKey":`, nil, 400, "InvalidParameter"},
		{"unknown field", `{` + pk + `,"city":"杭州","specId":2,"quantity":2,"qty":2}`, nil, 400, "InvalidParameter"},
		{"no quantity", `{` + pk + `,"city":"杭州","specId":2}`, nil, 400, "InvalidParameter"},
		{"quantity 0", `{` + pk + `,"city":"杭州","specId":2,"quantity":0}`, nil, 400, "InvalidParameter"},
		{"quantity 101", `{` + pk + `,"city":"杭州","specId":2,"quantity":101}`, nil, 400, "InvalidParameter"},
		{"quantity string", `{` + pk + `,"city":"杭州","specId":2,"quantity":"2"}`, nil, 400, "InvalidParameter"},
		{"quantity fraction", `{` + pk + `,"city":"杭州","specId":2,"quantity":2.5}`, nil, 400, "InvalidParameter"},
		{"specId 4", `{` + pk + `,"city":"杭州","specId":4,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"no specId", `{` + pk + `,"city":"杭州","quantity":1}`, nil, 400, "InvalidParameter"},
		{"no poolKey", `{"city":"杭州","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"long poolKey", `{"poolKey":"` + strings.Repeat("k", 65) + `","city":"杭州","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"no city", `{` + pk + `,"specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"city 全国", `{` + pk + `,"city":"全国","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"city 全国列表", `{` + pk + `,"city":"全国列表","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"95 city, spec 2", `{` + pk + `,"city":"全国通用","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"city with digits", `{` + pk + `,"city":"杭州1","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"prefix letters", `{` + pk + `,"city":"杭州","specId":2,"quantity":1,"prefix":"13x"}`, nil, 400, "InvalidParameter"},
		{"prefix too long", `{` + pk + `,"city":"杭州","specId":2,"quantity":1,"prefix":"1234567890123456789"}`, nil, 400, "InvalidParameter"},
		{"displayPool string", `{` + pk + `,"city":"杭州","specId":2,"quantity":1,"displayPool":"yes"}`, nil, 400, "InvalidParameter"},
		{"orderId with dot", `{"orderId":"a.b",` + pk + `,"city":"杭州","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"orderId too long", `{"orderId":"` + strings.Repeat("a", 129) + `",` + pk + `,"city":"杭州","specId":2,"quantity":1}`, nil, 400, "InvalidParameter"},
		{"bad Idempotency-Key", good, []string{"Idempotency-Key", "key with spaces"}, 400, "InvalidParameter"},
		{"key and id differ", `{"orderId":"a1",` + pk + `,"city":"杭州","specId":2,"quantity":1}`, []string{"Idempotency-Key", "b1"}, 400, "InvalidParameter"},
		{"body over 64 KiB", `{"poolKey":"` + strings.Repeat("k", 70<<10) + `"}`, nil, 413, "PayloadTooLarge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.do("POST", "/orders", c.body, c.hdr...)
			if a.status != c.status || a.errCode() != c.code || a.errMessage() == "" {
				t.Fatalf("%d %s, want %d %s", a.status, a.raw, c.status, c.code)
			}
		})
	}
	for _, c := range []struct{ method, path string }{{"PUT", "/orders"}, {"DELETE", "/orders/x"}, {"GET", "/orders"}} {
		if a := e.do(c.method, c.path, ""); a.status != 405 || a.errCode() != "MethodNotAllowed" {
			t.Errorf("%s %s: %d %s", c.method, c.path, a.status, a.raw)
		}
	}
	for _, p := range []string{"/order", "/orders/a/b", "/orders/a.b"} {
		if a := e.do("GET", p, ""); a.status != 404 || a.errCode() != "NotFound" {
			t.Errorf("GET %s: %d %s", p, a.status, a.raw)
		}
	}
	if n := len(e.messages()); n != 0 {
		t.Fatalf("%d messages published for bad input", n)
	}
	if all, err := e.Ledger.List(context.Background()); err != nil || len(all) != 0 {
		t.Fatalf("ledger holds %d orders for bad input (%v)", len(all), err)
	}
	t.Logf("%d bad POST bodies and headers refused, 6 bad routes; nothing published, nothing stored", len(cases))
}

func TestNATSDownIs503AndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.NATS.Shutdown()
	start := time.Now()
	a := e.do("POST", "/orders", good, "Idempotency-Key", "down-1")
	if a.status != http.StatusServiceUnavailable || a.errCode() != "Unavailable" || !strings.Contains(a.errMessage(), "not accepted") || a.body["orderId"] != nil {
		t.Fatalf("POST with NATS down: %d %s", a.status, a.raw)
	}
	g := e.do("GET", "/orders/down-1", "")
	if g.status != http.StatusServiceUnavailable {
		t.Fatalf("GET with NATS down: %d %s", g.status, g.raw)
	}
	t.Logf("503 in %v: %s", time.Since(start).Round(time.Millisecond), a.errMessage())
	if err := e.NATS.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUp(t, e)
	if g := e.do("GET", "/orders/down-1", ""); g.status != 404 {
		t.Fatalf("after restart: %d %s", g.status, g.raw)
	}
	if n := len(e.messages()); n != 0 {
		t.Fatalf("%d messages", n)
	}
	if a := e.do("POST", "/orders", good, "Idempotency-Key", "down-1"); a.status != 202 {
		t.Fatalf("retry after restart: %d %s", a.status, a.raw)
	}
}

func waitUp(t *testing.T, e *env) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.Queue.Stream.Info(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("NATS not back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publisherFunc adapts a function to intake.Publisher.
type publisherFunc func(ctx context.Context, ev events.Event) (*jetstream.PubAck, error)

func (f publisherFunc) PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error) {
	return f(ctx, ev)
}

// TestPublishFailureStillAccepts: the ledger write succeeds, the publish
// fails. The entry is the acceptance: 202 with the order id, a retry with
// another body is 409, and the sweep publishes the order, which is bought
// once.
func TestPublishFailureStillAccepts(t *testing.T) {
	e := newEnv(t)
	e.serve(e.Ledger, publisherFunc(func(context.Context, events.Event) (*jetstream.PubAck, error) {
		return nil, queue.Unavailable("publish", errors.New("nats: timeout"))
	}))
	a := e.do("POST", "/orders", good, "Idempotency-Key", "pf-1")
	if a.status != 202 || a.body["orderId"] != "pf-1" || a.header.Get("Location") != "/orders/pf-1" {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	o, err := e.Ledger.Get(context.Background(), "pf-1")
	if err != nil || o.RequestPublished || len(e.messages()) != 0 {
		t.Fatalf("entry %+v %v, %d messages", o, err, len(e.messages()))
	}
	e.serve(e.Ledger, e.Pub)
	if a := e.do("POST", "/orders", `{"poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":1}`, "Idempotency-Key", "pf-1"); a.status != 409 {
		t.Fatalf("the same key with another body: %d %s", a.status, a.raw)
	}
	e.Run(e.Worker("w", worker.WithSweep(100*time.Millisecond, 300*time.Millisecond)))
	got := e.WaitStopped([]string{"pf-1"}, 20*time.Second)["pf-1"]
	if got.Status != ledger.StatusCompleted || len(e.messages()) != 1 {
		t.Fatalf("order %s, %d messages", got.Status, len(e.messages()))
	}
	e.Audit(map[string]*ledger.Order{"pf-1": got})
}

// TestLostAckButStored: the publish was stored but its ack was lost. The
// answer is 202 with the order id (nothing invites a second order), the
// order is bought once, and a retry with the same key and another body is
// 409.
func TestLostAckButStored(t *testing.T) {
	e := newEnv(t)
	e.serve(e.Ledger, publisherFunc(func(ctx context.Context, ev events.Event) (*jetstream.PubAck, error) {
		if _, err := e.Pub.PublishEvent(ctx, ev); err != nil {
			return nil, err
		}
		return nil, queue.Unavailable("publish", errors.New("nats: timeout waiting for the ack"))
	}))
	a := e.do("POST", "/orders", good, "Idempotency-Key", "lost-1")
	if a.status != 202 || a.body["orderId"] != "lost-1" {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	e.serve(e.Ledger, e.Pub)
	if again := e.do("POST", "/orders", `{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":3}`, "Idempotency-Key", "lost-1"); again.status != 409 {
		t.Fatalf("the same key with another body: %d %s", again.status, again.raw)
	}
	e.Run(e.Worker("w"))
	got := e.WaitStopped([]string{"lost-1"}, 20*time.Second)["lost-1"]
	if got.Status != ledger.StatusCompleted || len(e.Emu.Purchases()) != 2 || len(e.messages()) != 1 {
		t.Fatalf("order %s, %d sold, %d messages", got.Status, len(e.Emu.Purchases()), len(e.messages()))
	}
	e.Audit(map[string]*ledger.Order{"lost-1": got})
}

// lostAnswerKV is a ledger bucket whose Create lands but answers a timeout:
// the connection went away before the answer came back.
type lostAnswerKV struct{ jetstream.KeyValue }

func (kv lostAnswerKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if _, err := kv.KeyValue.Create(ctx, key, value, opts...); err != nil {
		return 0, err
	}
	return 0, context.DeadlineExceeded
}

// TestLedgerWriteOutcomeUnknown: the entry's own write landed but its answer
// was lost. The answer is 503 carrying the order id and Location — the order
// may exist — and it does: a retry with the same key replays it, and it is
// bought once. A 503 without an order id is kept for writes that certainly
// did not land (TestNATSDownIs503AndLeavesNothing).
func TestLedgerWriteOutcomeUnknown(t *testing.T) {
	e := newEnv(t)
	e.serve(ledger.New(lostAnswerKV{e.Queue.Ledger}), e.Pub)
	a := e.do("POST", "/orders", good, "Idempotency-Key", "unk-1")
	if a.status != 503 || a.body["orderId"] != "unk-1" || a.header.Get("Location") != "/orders/unk-1" || !strings.Contains(a.errMessage(), "may have been accepted") {
		t.Fatalf("%d %v %s", a.status, a.header, a.raw)
	}
	if g := e.do("GET", "/orders/unk-1", ""); g.status != 200 || g.body["status"] != "accepted" {
		t.Fatalf("GET: %d %s", g.status, g.raw)
	}
	e.serve(e.Ledger, e.Pub)
	if again := e.do("POST", "/orders", good, "Idempotency-Key", "unk-1"); again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry with the same key: %d %s", again.status, again.raw)
	}
	e.Run(e.Worker("w"))
	got := e.WaitStopped([]string{"unk-1"}, 20*time.Second)["unk-1"]
	if got.Status != ledger.StatusCompleted || len(e.Emu.Purchases()) != 2 {
		t.Fatalf("order %s, %d sold", got.Status, len(e.Emu.Purchases()))
	}
}

// TestHalfWrittenIsFinishedByRetry: an entry left accepted and unpublished
// (the intake died between its two writes) is published by the client's
// retry, answered as a replay.
func TestHalfWrittenIsFinishedByRetry(t *testing.T) {
	e := newEnv(t)
	var req events.OrderRequested
	_ = json.Unmarshal([]byte(good), &req)
	req.OrderID = "half-1"
	if _, _, err := e.Ledger.CreateOrGet(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	a := e.do("POST", "/orders", good, "Idempotency-Key", "half-1")
	if a.status != 200 || len(e.messages()) != 1 {
		t.Fatalf("%d %s, %d messages", a.status, a.raw, len(e.messages()))
	}
	o, _ := e.Ledger.Get(context.Background(), "half-1")
	if !o.RequestPublished || o.MessageSeq == 0 {
		t.Fatalf("not marked published: %+v", o)
	}
	if again := e.do("POST", "/orders", good, "Idempotency-Key", "half-1"); again.status != 200 || len(e.messages()) != 1 {
		t.Fatalf("third POST: %d, %d messages", again.status, len(e.messages()))
	}
}

// TestEndToEnd: POST an order, let a worker buy it from the Dyplsapi
// emulator through the aliyun client, and GET it completed; an order that
// cannot be filled GETs failed with its reason.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.Run(e.Worker("w"))
	emu := e.Emu

	ok := e.do("POST", "/orders", good, "Idempotency-Key", "e2e-1")
	bad := e.do("POST", "/orders", `{"poolKey":"FC100000000000001","city":"拉萨","specId":2,"quantity":1}`, "Idempotency-Key", "e2e-2")
	if ok.status != 202 || bad.status != 202 {
		t.Fatalf("POSTs: %s %s", ok.raw, bad.raw)
	}
	final := func(id string) answer {
		deadline := time.Now().Add(20 * time.Second)
		for {
			g := e.do("GET", "/orders/"+id, "")
			if s := g.body["status"]; s == "completed" || s == "failed" || s == "in_doubt" {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s still %v", id, g.body["status"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	g := final("e2e-1")
	nums, _ := g.body["numbers"].([]any)
	if g.body["status"] != "completed" || len(nums) != 2 || g.body["error"] != nil || g.body["quantity"] != float64(2) {
		t.Fatalf("GET e2e-1: %s", g.raw)
	}
	var sold []string
	for _, p := range emu.Purchases() {
		sold = append(sold, p.SecretNo)
	}
	if fmt.Sprint(nums) != fmt.Sprint(sold) {
		t.Fatalf("GET shows %v, the emulator sold %v", nums, sold)
	}
	f := final("e2e-2")
	fe, _ := f.body["error"].(map[string]any)
	if f.body["status"] != "failed" || fe["code"] != "InsufficientInventory" || !bytes.Contains([]byte(f.raw), []byte(`"numbers":[]`)) {
		t.Fatalf("GET e2e-2: %s", f.raw)
	}
	t.Logf("end to end: %s / %s", g.raw, f.raw)
}

// TestLedgerWritesPerOrder counts the ledger writes an order of quantity q
// costs from POST to order.completed, with nothing going wrong: 5 + 3q (one
// less when the worker's claim records the message before the intake's mark
// lands, which then has nothing to write). The
// money rule's floor is 3 + 2q — the entry (the acceptance), the claim, per
// number the attempt before the call and the number after it, and the end —
// and the rest are the published marks (the intake's message, each
// number.purchased, the terminal event) that let a replay skip what is out.
func TestLedgerWritesPerOrder(t *testing.T) {
	e := newEnv(t)
	e.Run(e.Worker("w"))
	for q := 1; q <= 3; q++ {
		id := fmt.Sprintf("writes-%d", q)
		body := fmt.Sprintf(`{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":%d}`, q)
		if a := e.do("POST", "/orders", body, "Idempotency-Key", id); a.status != 202 {
			t.Fatalf("POST: %d %s", a.status, a.raw)
		}
		e.WaitCompleted([]string{id}, 20*time.Second)
		history, err := e.Queue.Ledger.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if most := 5 + 3*q; len(history) != most && len(history) != most-1 {
			t.Errorf("quantity %d: %d ledger writes, want %d (or %d)", q, len(history), most, most-1)
		}
		t.Logf("quantity %d: %d ledger writes (floor %d)", q, len(history), 3+2*q)
	}
}
