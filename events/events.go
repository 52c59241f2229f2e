// Package events is xnum's event contract: the JetStream subjects, the
// CloudEvents types and the Go structs of their data, the CloudEvents 1.0
// structured-mode envelope they travel in, the Nats-Msg-Id of each event, and
// the decoding and validation of an incoming order.
//
// The same contracts are published as JSON Schema files (see Schema) for
// producers and consumers in other languages.
package events

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// JetStream subjects. Stream XNUM holds SubjectOrders and SubjectNumbers.
const (
	SubjectOrderRequested  = "xnum.orders.requested"
	SubjectNumberPurchased = "xnum.numbers.purchased"
	SubjectNumberExcess    = "xnum.numbers.excess"
	SubjectOrderCompleted  = "xnum.orders.completed"
	SubjectOrderFailed     = "xnum.orders.failed"
	SubjectOrderInDoubt    = "xnum.orders.in_doubt"

	SubjectOrders  = "xnum.orders.>"
	SubjectNumbers = "xnum.numbers.>"

	// SubjectNumberReports carries Dyplsapi's NumberManagementReport
	// messages as the cloud sends them (JSON {secretNo, city, partnerKey,
	// operatingTime, status, vendor}), not CloudEvents: the evidence that
	// settles a buy whose answer was lost. Stream XNUM_REPORTS holds it.
	SubjectNumberReports = "xnum.reports.numbers"
)

// CloudEvents types, one per subject.
const (
	TypeOrderRequested  = "xnum.order.requested"
	TypeNumberPurchased = "xnum.number.purchased"
	TypeNumberExcess    = "xnum.number.excess"
	TypeOrderCompleted  = "xnum.order.completed"
	TypeOrderFailed     = "xnum.order.failed"
	TypeOrderInDoubt    = "xnum.order.in_doubt"
)

// Envelope constants of CloudEvents 1.0 structured JSON mode.
const (
	SpecVersion = "1.0"
	// ContentType is the media type of a structured-mode event, sent as the
	// message's Content-Type header.
	ContentType = "application/cloudevents+json"
	// DataContentType is the media type of every event's data.
	DataContentType = "application/json"
)

// Default sources of the events xnum publishes (CloudEvents "source").
const (
	SourceIntake   = "/xnum/intake"
	SourceWorker   = "/xnum/worker"
	SourceOperator = "/xnum/operator" // xnum orders
)

// Limits of an order.
const (
	MinQuantity = 1
	MaxQuantity = 100
	// MaxOrderIDLen bounds an order id, which is a KV key, part of subjects'
	// Msg-Ids and of every log line of the order.
	MaxOrderIDLen = 128
)

var subjectOfType = map[string]string{
	TypeOrderRequested:  SubjectOrderRequested,
	TypeNumberPurchased: SubjectNumberPurchased,
	TypeNumberExcess:    SubjectNumberExcess,
	TypeOrderCompleted:  SubjectOrderCompleted,
	TypeOrderFailed:     SubjectOrderFailed,
	TypeOrderInDoubt:    SubjectOrderInDoubt,
}

// SubjectOf returns the subject that events of type typ are published on,
// or "" for a type that is not xnum's.
func SubjectOf(typ string) string { return subjectOfType[typ] }

// Event is a CloudEvents 1.0 event in structured JSON mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	// TraceParent is the W3C traceparent of the work that published the
	// event (the CloudEvents distributed-tracing extension), and RequestID
	// that work's request id (extension attribute "requestid"): the log
	// lines of whoever handles the event share the trace. Optional; a
	// publisher fills them from its context (internal/queue).
	TraceParent string `json:"traceparent,omitempty"`
	RequestID   string `json:"requestid,omitempty"`
}

// Subject is the subject e is published on.
func (e Event) Subject() string { return SubjectOf(e.Type) }

// MsgID is the Nats-Msg-Id e is published with. It is the event id, which
// the constructors make stable, so a repeated publish of the same fact is a
// duplicate JetStream drops.
func (e Event) MsgID() string { return e.ID }

// Payload is the data of one of xnum's events.
type Payload interface {
	// EventType is the CloudEvents type.
	EventType() string
	// EventID is the stable event id, also the Nats-Msg-Id.
	EventID() string
}

// New wraps p in an envelope with p's stable id, from source at t.
func New(source string, t time.Time, p Payload) (Event, error) {
	if source == "" {
		return Event{}, errors.New("events: empty source")
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("events: marshal %s: %w", p.EventType(), err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              p.EventID(),
		Source:          source,
		Type:            p.EventType(),
		Time:            t.UTC(),
		DataContentType: DataContentType,
		Data:            data,
	}, nil
}

// Error is the reason an order failed or is in doubt. Code is a
// provider.Kind, or a code of this package's own; ProviderCode and RequestID
// are the provider's code and request id when a provider answered. It is
// shown to whoever reads the order and its events, so it carries nothing
// else of the provider's answer (see ErrorOf).
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	ProviderCode string `json:"providerCode,omitempty"`
	RequestID    string `json:"requestId,omitempty"`
}

// Codes of failures that are not a provider's.
const (
	// CodeMaxDeliveries: the order's message was delivered as often as the
	// consumer allows without the order ending.
	CodeMaxDeliveries = "MaxDeliveriesExceeded"
)

// ErrorOf turns err into an Error: its taxonomy kind as the code and, when a
// *provider.Error is in its chain, the provider's code and request id. The
// message is the provider's message (after provider.SafeMessage: no quoted
// request, no credential, one bounded line) under the wrapping context of our
// own, such as "buy attempt 2: "; the provider.Error's cause (a transport
// error) is left to the logs. Any other error gives its text, made safe the
// same way.
func ErrorOf(err error) Error {
	if err == nil {
		return Error{}
	}
	e := Error{Code: string(provider.KindOf(err))}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		e.Message = provider.SafeMessage(err.Error())
		return e
	}
	e.ProviderCode = provider.SafeMessage(pe.Code)
	e.RequestID = provider.SafeMessage(pe.RequestID)
	msg := pe.Message
	if msg == "" {
		msg = string(pe.Kind)
	}
	if pe.Provider != "" {
		msg = strings.TrimSpace(pe.Provider+" "+pe.Op) + ": " + msg
	}
	// The context our own code wrapped the provider's error in.
	if whole, own := err.Error(), pe.Error(); whole != own && strings.HasSuffix(whole, own) {
		msg = strings.TrimSuffix(whole, own) + msg
	}
	e.Message = provider.SafeMessage(msg)
	return e
}

// OrderRequested asks for Quantity numbers to be bought into a pool. It is
// the data of xnum.order.requested and the body of POST /orders.
type OrderRequested struct {
	OrderID     string          `json:"orderId"`
	PoolKey     string          `json:"poolKey"`
	City        string          `json:"city"`
	SpecID      provider.SpecID `json:"specId"`
	Quantity    int             `json:"quantity"`
	Prefix      string          `json:"prefix"`
	DisplayPool bool            `json:"displayPool"`
}

func (OrderRequested) EventType() string { return TypeOrderRequested }

// EventID is the order id: one order is one message, whoever publishes it.
func (o OrderRequested) EventID() string { return o.OrderID }

// Redrive is order.requested for o published again, the n-th time, because
// nothing drove the order any more (its message was acknowledged while the
// order went on, or never published). Its id, and Nats-Msg-Id, is
// {orderId}/redrive/{n}: a message of its own, with deliveries of its own,
// that the stream does not drop as a duplicate of the first.
func Redrive(source string, t time.Time, o OrderRequested, n int) (Event, error) {
	ev, err := New(source, t, o)
	ev.ID = fmt.Sprintf("%s/redrive/%d", o.OrderID, n)
	return ev, err
}

// BuyRequest is the request that buys one number of the order.
func (o OrderRequested) BuyRequest() provider.BuyRequest {
	return provider.BuyRequest{
		PoolKey:     o.PoolKey,
		City:        o.City,
		SpecID:      o.SpecID,
		Prefix:      o.Prefix,
		DisplayPool: o.DisplayPool,
	}
}

// RemainQuery is the inventory query that tells whether the order can be
// filled.
func (o OrderRequested) RemainQuery() provider.RemainQuery {
	return provider.RemainQuery{City: o.City, SpecID: o.SpecID, Prefix: o.Prefix}
}

// Validate checks o: an order id usable as a ledger key and Msg-Id, a
// quantity of MinQuantity..MaxQuantity, and a valid BuyRequest. It returns
// nil or a provider.ErrInvalidParameter error naming the field.
func (o OrderRequested) Validate() error {
	if err := ValidateOrderID(o.OrderID); err != nil {
		return err
	}
	if o.Quantity < MinQuantity || o.Quantity > MaxQuantity {
		return provider.Invalid("quantity", fmt.Sprintf("quantity must be between %d and %d", MinQuantity, MaxQuantity))
	}
	return o.BuyRequest().Validate()
}

// ValidateOrderID checks that id can be an order id: 1..MaxOrderIDLen
// characters of letters, digits, '-' and '_', starting with a letter or
// digit. That keeps it a single token in KV keys, subjects and Msg-Ids.
func ValidateOrderID(id string) error {
	if id == "" {
		return provider.Invalid("orderId", "orderId is required")
	}
	if len(id) > MaxOrderIDLen {
		return provider.Invalid("orderId", fmt.Sprintf("orderId must be at most %d characters", MaxOrderIDLen))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_') {
			return provider.Invalid("orderId", "orderId must be letters, digits, '-' and '_', starting with a letter or digit")
		}
	}
	return nil
}

// NewOrderID makes an order id for an order that came without one:
// "ord_" and 26 random base32 characters (128 bits).
func NewOrderID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails, per crypto/rand
	return "ord_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// NumberPurchased says one number was bought for an order.
type NumberPurchased struct {
	OrderID   string          `json:"orderId"`
	SecretNo  string          `json:"secretNo"`
	PoolKey   string          `json:"poolKey"`
	City      string          `json:"city"`
	SpecID    provider.SpecID `json:"specId"`
	RequestID string          `json:"requestId"`
}

func (NumberPurchased) EventType() string { return TypeNumberPurchased }

// EventID is the order id and the number: a number is bought once.
func (n NumberPurchased) EventID() string { return NumberEventID(n.OrderID, n.SecretNo) }

// NumberEventID is the event id and Msg-Id of number.purchased.
func NumberEventID(orderID, secretNo string) string { return orderID + "/number/" + secretNo }

// OrderCompleted says an order bought all its numbers. It is terminal.
type OrderCompleted struct {
	OrderID string  `json:"orderId"`
	Numbers Numbers `json:"numbers"`
}

func (OrderCompleted) EventType() string { return TypeOrderCompleted }

// EventID is stable per order: an order completes once.
func (c OrderCompleted) EventID() string { return c.OrderID + "/completed" }

// OrderFailed says an order ended without all its numbers; Numbers are the
// ones bought before it failed. It is terminal.
type OrderFailed struct {
	OrderID string  `json:"orderId"`
	Numbers Numbers `json:"numbers"`
	Error   Error   `json:"error"`
}

func (OrderFailed) EventType() string { return TypeOrderFailed }

// EventID is stable per order: an order fails once.
func (f OrderFailed) EventID() string { return f.OrderID + "/failed" }

// NumberExcess is a number an order's attempt bought past its quantity: the
// answer of a buy came after its attempt had been settled as having bought
// nothing and the order had moved on. The number is the account's, in the
// order's pool; an operator decides whether to keep or release it.
type NumberExcess struct {
	OrderID   string          `json:"orderId"`
	SecretNo  string          `json:"secretNo"`
	PoolKey   string          `json:"poolKey"`
	City      string          `json:"city"`
	SpecID    provider.SpecID `json:"specId"`
	Attempt   int             `json:"attempt"`
	RequestID string          `json:"requestId"`
}

func (NumberExcess) EventType() string { return TypeNumberExcess }

// EventID is the order id and the number.
func (n NumberExcess) EventID() string { return n.OrderID + "/excess/" + n.SecretNo }

// OrderInDoubt says a buy of the order has an unknown outcome: the order
// stops until an operator settles that buy. Attempt is the ledger's number
// of that buy, which keeps the id of each in-doubt episode distinct.
type OrderInDoubt struct {
	OrderID string  `json:"orderId"`
	Attempt int     `json:"attempt"`
	Numbers Numbers `json:"numbers"`
	Error   Error   `json:"error"`
}

func (OrderInDoubt) EventType() string { return TypeOrderInDoubt }

// EventID is stable per order and in-doubt buy.
func (d OrderInDoubt) EventID() string { return fmt.Sprintf("%s/in_doubt/%d", d.OrderID, d.Attempt) }

// Numbers are the phone numbers of an order's event. No numbers encode as
// [], not null: the schemas want an array.
type Numbers []string

// MarshalJSON writes nil as [].
func (n Numbers) MarshalJSON() ([]byte, error) {
	if n == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(n))
}

// PeekTrace returns the traceparent and requestid extension attributes of
// a message that is a CloudEvent, as they are: unchecked, and "" when absent,
// not strings, or when the message is not an event.
func PeekTrace(b []byte) (traceParent, requestID string) {
	var env struct {
		SpecVersion any    `json:"specversion"`
		TraceParent any    `json:"traceparent"`
		RequestID   any    `json:"requestid"`
		Data        ignore `json:"data"`
	}
	if json.Unmarshal(b, &env) != nil || env.SpecVersion == nil {
		return "", ""
	}
	traceParent, _ = env.TraceParent.(string)
	requestID, _ = env.RequestID.(string)
	return traceParent, requestID
}

// ignore skips a JSON value without decoding it.
type ignore struct{}

func (*ignore) UnmarshalJSON([]byte) error { return nil }

// PeekOrderID returns the order id of an order.requested message (our
// CloudEvent or a bare order) even when the rest of it does not decode, so a
// bad order can still be failed under its own id. ok is false when no string
// orderId is found.
func PeekOrderID(b []byte) (id string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "", false
	}
	if _, isEvent := m["specversion"]; isEvent {
		var inner map[string]json.RawMessage
		if strictKeys(b, envelopeKeys) != nil || json.Unmarshal(m["data"], &inner) != nil {
			return "", false
		}
		b, m = m["data"], inner
	}
	if strictKeys(b, []string{"orderId"}) != nil {
		return "", false // two ids, or one in another case: whose would it be?
	}
	if json.Unmarshal(m["orderId"], &id) != nil || strings.TrimSpace(id) == "" {
		return "", false
	}
	return id, true
}
