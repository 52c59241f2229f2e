package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
	"github.com/xnum-dev/xnum/pkg/provider"
)

var good = OrderRequested{
	OrderID: "ord-1", PoolKey: "FC100000001", City: "杭州", SpecID: provider.SpecVirtual,
	Quantity: 3, Prefix: "170", DisplayPool: true,
}

func TestDecodeOrderRequested(t *testing.T) {
	bare := `{"orderId":"ord-1","poolKey":"FC100000001","city":"杭州","specId":1,"quantity":3,"prefix":"170","displayPool":true}`
	ev, err := New(SourceIntake, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), good)
	if err != nil {
		t.Fatal(err)
	}
	evJSON, _ := json.Marshal(ev)
	b64 := `{"specversion":"1.0","id":"x","source":"/other","type":"xnum.order.requested","data_base64":"` +
		base64.StdEncoding.EncodeToString([]byte(bare)) + `"}`
	ok := []struct{ name, in string }{
		{"bare", bare},
		{"bare with spaces", "\n  " + bare + "\n"},
		{"our event", string(evJSON)},
		{"event from elsewhere with extension", `{"specversion":"1.0","id":"e1","source":"/erp","type":"xnum.order.requested","traceparent":"00-x","datacontenttype":"application/json; charset=utf-8","data":` + bare + `}`},
		{"data_base64", b64},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeOrderRequested([]byte(c.in))
			if err != nil {
				t.Fatalf("DecodeOrderRequested: %v", err)
			}
			if got != good {
				t.Fatalf("got %+v, want %+v", got, good)
			}
		})
	}

	bad := []struct{ name, in, field string }{
		{"empty", ``, "body"},
		{"spaces", "  \n", "body"},
		{"array", `[` + bare + `]`, "body"},
		{"string", `"ord-1"`, "body"},
		{"null", `null`, "body"},
		{"truncated", `{"orderId":"ord-1","poolKey":`, "body"},
		{"not json", `orderId=1`, "body"},
		{"trailing data", bare + `{}`, "body"},
		{"unknown field", `{"orderId":"a","quantitiy":2}`, "quantitiy"},
		{"quantity as string", `{"orderId":"a","quantity":"2"}`, "quantity"},
		{"quantity fractional", `{"orderId":"a","quantity":1.5}`, "quantity"},
		{"specId as string", `{"orderId":"a","specId":"1"}`, "specId"},
		{"displayPool as string", `{"orderId":"a","displayPool":"yes"}`, "displayPool"},
		{"orderId as number", `{"orderId":12}`, "orderId"},
		{"city as object", `{"orderId":"a","city":{}}`, "city"},
		{"event wrong type", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.completed","data":` + bare + `}`, "type"},
		{"event wrong version", `{"specversion":"0.3","id":"1","source":"/x","type":"xnum.order.requested","data":` + bare + `}`, "specversion"},
		{"event without id", `{"specversion":"1.0","source":"/x","type":"xnum.order.requested","data":` + bare + `}`, "id"},
		{"event without source", `{"specversion":"1.0","id":"1","type":"xnum.order.requested","data":` + bare + `}`, "source"},
		{"event without data", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested"}`, "data"},
		{"event null data", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":null}`, "data"},
		{"event xml data", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","datacontenttype":"application/xml","data":"<a/>"}`, "datacontenttype"},
		{"event string data", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":"{}"}`, "body"},
		{"event bad base64", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data_base64":"%%%"}`, "data_base64"},
		{"event both data kinds", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":{},"data_base64":""}`, "data"},
		// encoding/json matches keys case-insensitively and keeps the last:
		// these would buy 100, or whichever came last.
		{"key twice in another case", `{"orderId":"a","quantity":1,"QUANTITY":100}`, "QUANTITY"},
		{"key twice", `{"orderId":"a","quantity":1,"quantity":100}`, "quantity"},
		{"key in another case", `{"orderId":"a","Quantity":100}`, "Quantity"},
		{"orderId twice", `{"orderId":"a","orderId":"b"}`, "orderId"},
		{"event data with a key twice", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":{"orderId":"a","quantity":1,"Quantity":9}}`, "Quantity"},
		{"event data twice", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":` + bare + `,"data":{"orderId":"b"}}`, "data"},
		{"event attribute in another case", `{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","Data":{"orderId":"b"},"data":` + bare + `}`, "Data"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeOrderRequested([]byte(c.in))
			assertInvalid(t, err, c.field)
		})
	}
	t.Logf("%d accepted forms, %d refused forms", len(ok), len(bad))
}

func assertInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one on field %q", field)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.ErrInvalidParameter {
		t.Fatalf("error %v (%T) is not an InvalidParameter *provider.Error", err, err)
	}
	if pe.Field != field {
		t.Fatalf("error %q names field %q, want %q", err, pe.Field, field)
	}
	if pe.Message == "" {
		t.Fatalf("error on %q has no message", field)
	}
}

func TestValidate(t *testing.T) {
	mod := func(f func(*OrderRequested)) OrderRequested { o := good; f(&o); return o }
	cases := []struct {
		name  string
		o     OrderRequested
		field string // "" = valid
	}{
		{"good", good, ""},
		{"quantity 1", mod(func(o *OrderRequested) { o.Quantity = 1 }), ""},
		{"quantity 100", mod(func(o *OrderRequested) { o.Quantity = 100 }), ""},
		{"95 numbers", mod(func(o *OrderRequested) { o.SpecID = provider.Spec95; o.City = provider.CityUniversal }), ""},
		{"longest id", mod(func(o *OrderRequested) { o.OrderID = strings.Repeat("a", MaxOrderIDLen) }), ""},
		{"id with _ and -", mod(func(o *OrderRequested) { o.OrderID = "A_b-9" }), ""},
		{"no id", mod(func(o *OrderRequested) { o.OrderID = "" }), "orderId"},
		{"id too long", mod(func(o *OrderRequested) { o.OrderID = strings.Repeat("a", MaxOrderIDLen+1) }), "orderId"},
		{"id with dot", mod(func(o *OrderRequested) { o.OrderID = "a.b" }), "orderId"},
		{"id with space", mod(func(o *OrderRequested) { o.OrderID = "a b" }), "orderId"},
		{"id with slash", mod(func(o *OrderRequested) { o.OrderID = "a/b" }), "orderId"},
		{"id with wildcard", mod(func(o *OrderRequested) { o.OrderID = "a*" }), "orderId"},
		{"id starting with dash", mod(func(o *OrderRequested) { o.OrderID = "-a" }), "orderId"},
		{"id non-ascii", mod(func(o *OrderRequested) { o.OrderID = "订单1" }), "orderId"},
		{"quantity 0", mod(func(o *OrderRequested) { o.Quantity = 0 }), "quantity"},
		{"quantity negative", mod(func(o *OrderRequested) { o.Quantity = -1 }), "quantity"},
		{"quantity 101", mod(func(o *OrderRequested) { o.Quantity = 101 }), "quantity"},
		{"no pool key", mod(func(o *OrderRequested) { o.PoolKey = "" }), "poolKey"},
		{"pool key with space", mod(func(o *OrderRequested) { o.PoolKey = "FC 1" }), "poolKey"},
		{"spec 0", mod(func(o *OrderRequested) { o.SpecID = 0 }), "specId"},
		{"spec 4", mod(func(o *OrderRequested) { o.SpecID = 4 }), "specId"},
		{"no city", mod(func(o *OrderRequested) { o.City = "" }), "city"},
		{"nationwide city", mod(func(o *OrderRequested) { o.City = provider.CityNationwide }), "city"},
		{"city list", mod(func(o *OrderRequested) { o.City = provider.CityNationwideList }), "city"},
		{"95 city with spec 1", mod(func(o *OrderRequested) { o.City = provider.CityUniversal }), "city"},
		{"city with digits", mod(func(o *OrderRequested) { o.City = "杭州1" }), "city"},
		{"prefix letters", mod(func(o *OrderRequested) { o.Prefix = "13a" }), "prefix"},
		{"prefix too long", mod(func(o *OrderRequested) { o.Prefix = strings.Repeat("1", 19) }), "prefix"},
		// Control characters, refused in every string field with the field named.
		{"id with CRLF", mod(func(o *OrderRequested) { o.OrderID = "a\r\nb" }), "orderId"},
		{"pool key with LF", mod(func(o *OrderRequested) { o.PoolKey = "FC1\nX" }), "poolKey"},
		{"pool key with NUL", mod(func(o *OrderRequested) { o.PoolKey = "FC1\x00" }), "poolKey"},
		{"city with CR", mod(func(o *OrderRequested) { o.City = "杭州\r" }), "city"},
		{"city with C1 control", mod(func(o *OrderRequested) { o.City = "杭\u0085州" }), "city"},
		{"prefix with tab", mod(func(o *OrderRequested) { o.Prefix = "130\t" }), "prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.o.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			assertInvalid(t, err, c.field)
		})
	}
}

// A redrive is order.requested under an id of its own, so the stream keeps
// it beside the first message.
func TestRedrive(t *testing.T) {
	ev, err := Redrive(SourceWorker, time.Now(), good, 3)
	if err != nil || ev.ID != good.OrderID+"/redrive/3" || ev.MsgID() != ev.ID || ev.Type != TypeOrderRequested || ev.Subject() != SubjectOrderRequested {
		t.Fatalf("%+v %v", ev, err)
	}
	b, _ := json.Marshal(ev)
	got, err := DecodeOrderRequested(b)
	if err != nil || got != good {
		t.Fatalf("decoded %+v %v", got, err)
	}
}

func TestEventIDs(t *testing.T) {
	cases := []struct {
		p       Payload
		id, typ string
		subject string
	}{
		{good, "ord-1", TypeOrderRequested, SubjectOrderRequested},
		{NumberPurchased{OrderID: "ord-1", SecretNo: "17000000001"}, "ord-1/number/17000000001", TypeNumberPurchased, SubjectNumberPurchased},
		{NumberExcess{OrderID: "ord-1", SecretNo: "17000000001"}, "ord-1/excess/17000000001", TypeNumberExcess, SubjectNumberExcess},
		{OrderCompleted{OrderID: "ord-1"}, "ord-1/completed", TypeOrderCompleted, SubjectOrderCompleted},
		{OrderFailed{OrderID: "ord-1"}, "ord-1/failed", TypeOrderFailed, SubjectOrderFailed},
		{OrderInDoubt{OrderID: "ord-1", Attempt: 4}, "ord-1/in_doubt/4", TypeOrderInDoubt, SubjectOrderInDoubt},
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, cn.Shanghai)
	for _, c := range cases {
		e1, err := New(SourceWorker, at, c.p)
		if err != nil {
			t.Fatal(err)
		}
		e2, _ := New(SourceWorker, at.Add(time.Hour), c.p)
		if e1.ID != c.id || e1.MsgID() != c.id || e2.ID != c.id {
			t.Errorf("%s: ids %q, %q; want %q both times", c.typ, e1.ID, e2.ID, c.id)
		}
		if e1.Type != c.typ || e1.Subject() != c.subject {
			t.Errorf("%s: type %q subject %q", c.typ, e1.Type, e1.Subject())
		}
		if e1.Time.Location() != time.UTC {
			t.Errorf("%s: time %v not in UTC", c.typ, e1.Time)
		}
	}
	if SubjectOf("xnum.order.unknown") != "" {
		t.Error("unknown type has a subject")
	}
	if _, err := New("", at, good); err == nil {
		t.Error("New with an empty source: no error")
	}
}

func TestPeekOrderID(t *testing.T) {
	cases := []struct {
		in string
		id string
	}{
		{`{"orderId":"a1","quantity":"x"}`, "a1"},
		{`{"specversion":"1.0","data":{"orderId":"a2","bogus":1}}`, "a2"},
		{`{"orderId":7}`, ""},
		{`{"orderId":"  "}`, ""},
		{`{"quantity":1}`, ""},
		{`not json`, ""},
		{`{"specversion":"1.0","data":"x"}`, ""},
		{`{"orderId":"a","orderId":"b"}`, ""},
		{`{"orderId":"a","OrderID":"b"}`, ""},
		{`{"specversion":"1.0","data":{"orderId":"a","orderId":"b"}}`, ""},
	}
	for _, c := range cases {
		id, ok := PeekOrderID([]byte(c.in))
		if id != c.id || ok != (c.id != "") {
			t.Errorf("PeekOrderID(%s) = %q, %v; want %q", c.in, id, ok, c.id)
		}
	}
}

func TestPeekTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev, err := New(SourceIntake, time.Now(), good)
	if err != nil {
		t.Fatal(err)
	}
	ev.TraceParent, ev.RequestID = tp, "req-1"
	ours, _ := json.Marshal(ev)
	cases := []struct {
		name, in, traceParent, requestID string
	}{
		{"our event", string(ours), tp, "req-1"},
		{"another's event", `{"specversion":"1.0","traceparent":"00-x","data":{"orderId":"a"}}`, "00-x", ""},
		{"no extensions", `{"specversion":"1.0","data":{"orderId":"a"}}`, "", ""},
		{"not strings", `{"specversion":"1.0","traceparent":7,"requestid":{}}`, "", ""},
		{"a bare order", `{"orderId":"a","traceparent":"` + tp + `"}`, "", ""},
		{"not json", `traceparent`, "", ""},
	}
	for _, c := range cases {
		gotTP, gotID := PeekTrace([]byte(c.in))
		if gotTP != c.traceParent || gotID != c.requestID {
			t.Errorf("%s: PeekTrace = %q, %q; want %q, %q", c.name, gotTP, gotID, c.traceParent, c.requestID)
		}
	}
	// The extensions travel with the order and do not change it.
	got, err := DecodeOrderRequested(ours)
	if err != nil || got != good {
		t.Errorf("an order with trace extensions decodes to %+v, %v; want %+v", got, err, good)
	}
	for _, key := range []string{"Traceparent", "RequestID"} {
		in := `{"specversion":"1.0","id":"e","source":"/s","type":"xnum.order.requested","` + key + `":"x","data":{"orderId":"a"}}`
		if _, err := DecodeOrderRequested([]byte(in)); provider.KindOf(err) != provider.ErrInvalidParameter {
			t.Errorf("envelope key %q: err %v, want it refused as a case variant", key, err)
		}
	}
}

func TestNewOrderID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewOrderID()
		if err := ValidateOrderID(id); err != nil {
			t.Fatalf("NewOrderID made invalid id %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewOrderID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestErrorOf(t *testing.T) {
	const keyID = "LTAI5tKeyIdValue"
	transport := errors.New(`Post "https://dyplsapi.aliyuncs.com/?AccessKeyId=` + keyID + `&Action=BuySecretNo": EOF`)
	signature := &provider.Error{Kind: provider.ErrUnauthorized, Provider: "aliyun", Op: "BuySecretNo", Code: "SignatureDoesNotMatch",
		RequestID: "8F1A-22", Status: 400,
		Message: "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D" + keyID + "%26Action%3DBuySecretNo"}
	for _, tc := range []struct {
		name  string
		err   error
		want  Error
		leaks []string
	}{
		{"nil", nil, Error{}, nil},
		{"validation", provider.Invalid("city", "city is required"), Error{Code: "InvalidParameter", Message: "city is required"}, nil},
		{"our own kind", &provider.Error{Kind: provider.ErrInsufficientInventory, Message: "2 left, 3 wanted"},
			Error{Code: "InsufficientInventory", Message: "2 left, 3 wanted"}, nil},
		{"provider answer", &provider.Error{Kind: provider.ErrInsufficientInventory, Provider: "aliyun", Op: "BuySecretNo", Code: "isv.NO_AVAILABLE_NUMBER", RequestID: "R-1", Message: "no number"},
			Error{Code: "InsufficientInventory", ProviderCode: "isv.NO_AVAILABLE_NUMBER", RequestID: "R-1", Message: "aliyun BuySecretNo: no number"}, nil},
		{"wrapped, quoting the signed request", fmt.Errorf("buy attempt 2: %w", signature),
			Error{Code: "Unauthorized", ProviderCode: "SignatureDoesNotMatch", RequestID: "8F1A-22",
				Message: "buy attempt 2: aliyun BuySecretNo: Specified signature is not matched with our calculation. [the signed request it quoted is not shown]"},
			[]string{keyID, "AccessKeyId", "string to sign"}},
		{"transport cause left to the logs", fmt.Errorf("inventory check: %w", &provider.Error{Kind: provider.ErrInDoubt, Provider: "aliyun", Op: "BuySecretNo", Message: "sent, but no answer came", Err: transport}),
			Error{Code: "InDoubt", Message: "inventory check: aliyun BuySecretNo: sent, but no answer came"}, []string{keyID, "dyplsapi"}},
		{"bare kind", fmt.Errorf("order x: %w", provider.ErrThrottled), Error{Code: "Throttled", Message: "order x: Throttled"}, nil},
		{"plain error", errors.New("ledger: nats://xnum:pw@10.0.0.5 unreachable\n"), Error{Code: "Internal", Message: "ledger: nats://xnum:[redacted]@10.0.0.5 unreachable"}, []string{"pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorOf(tc.err)
			if got != tc.want {
				t.Errorf("ErrorOf = %+v\nwant      %+v", got, tc.want)
			}
			b, _ := json.Marshal(got)
			for _, l := range tc.leaks {
				if strings.Contains(string(b), l) {
					t.Errorf("%q reaches the order's error: %s", l, b)
				}
			}
		})
	}
}

func TestNilNumbersMarshalAsArray(t *testing.T) {
	for _, p := range []Payload{OrderCompleted{OrderID: "a"}, OrderFailed{OrderID: "a"}, OrderInDoubt{OrderID: "a", Attempt: 1}} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if _, ok := m["numbers"].([]any); !ok {
			t.Errorf("%T marshals numbers as %v", p, m["numbers"])
		}
	}
}

// FuzzDecodeOrderRequested: no input panics, and an order that decodes and
// validates survives a round trip through JSON unchanged.
func FuzzDecodeOrderRequested(f *testing.F) {
	f.Add([]byte(`{"orderId":"ord-1","poolKey":"FC1","city":"杭州","specId":1,"quantity":3}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/x","type":"xnum.order.requested","data":{"orderId":"a","poolKey":"P","city":"北京","specId":2,"quantity":1}}`))
	f.Add([]byte(`{"orderId":"a","quantity":1e2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOrderRequested(b)
		if err != nil || o.Validate() != nil {
			return
		}
		again, _ := json.Marshal(o)
		o2, err := DecodeOrderRequested(again)
		if err != nil || !reflect.DeepEqual(o, o2) {
			t.Fatalf("round trip of %s: %+v, %v", again, o2, err)
		}
	})
}
