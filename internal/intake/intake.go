// Package intake is the buy function's HTTP routes: POST /orders takes an
// order in and queues it, GET /orders/{id} shows it from the ledger.
//
// # The ledger entry is the acceptance
//
// POST /orders writes the ledger entry first (kv.Create, atomic on the id)
// and publishes order.requested (Nats-Msg-Id = order id) second:
//
//   - The id is claimed atomically, so of two racing POSTs with one id and
//     different bodies exactly one wins and the other gets 409 — a check
//     against the stream could not tell (JetStream's duplicate detection
//     drops the second silently). A retry with the same id and another body
//     is 409 in every case: an entry is never deleted.
//   - Once the entry exists the order is accepted, whatever happens to the
//     publish: 202 with the order id and Location. A publish that failed, or
//     whose ack was lost, leaves the entry "not published", and the sweep
//     (internal/redrive, run by the workers) publishes it; a publish that did
//     land is dropped then as its duplicate.
//   - When the entry's own write has an unknown outcome (the answer was lost),
//     the answer is 503 carrying the order id and Location: the order may
//     exist, and will then be bought; GET /orders/{id} or a retry with the
//     same Idempotency-Key tells. A 503 without an order id means nothing was
//     written: the order does not exist and never will be bought.
package intake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// HeaderIdempotencyKey may carry the order id.
const HeaderIdempotencyKey = "Idempotency-Key"

// Publisher publishes an event and waits for the stream's ack
// (*queue.Publisher).
type Publisher interface {
	PublishEvent(ctx context.Context, ev events.Event) (*jetstream.PubAck, error)
}

// Handler serves the routes. Build it with New.
type Handler struct {
	ledger  *ledger.Ledger
	pub     Publisher
	log     *slog.Logger
	now     func() time.Time
	source  string
	timeout time.Duration
	newID   func() string
	notify  func(context.Context, events.OrderRequested) // WithAccepted
	mux     *httpjson.Mux
}

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithClock replaces time.Now for event times.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithSource sets the CloudEvents source of order.requested
// (events.SourceIntake).
func WithSource(s string) Option { return func(h *Handler) { h.source = s } }

// WithTimeout bounds the ledger and queue calls of one request (default
// 5s), so an unreachable NATS is a prompt 503, not a hung request.
func WithTimeout(d time.Duration) Option { return func(h *Handler) { h.timeout = d } }

// WithIDGenerator replaces events.NewOrderID for orders that come without
// an id.
func WithIDGenerator(f func() string) Option { return func(h *Handler) { h.newID = f } }

// WithAccepted calls f once an order is accepted (its ledger entry
// written; its message published, or left to the sweep), before the
// answer, such as to wake the worker up (wakeup.Waker.Accepted). What f
// does cannot fail the order.
func WithAccepted(f func(ctx context.Context, order events.OrderRequested)) Option {
	return func(h *Handler) { h.notify = f }
}

// New returns the handler of POST /orders and GET /orders/{id}. Unknown
// paths and methods answer 404 and 405 in the shared error shape.
func New(l *ledger.Ledger, pub Publisher, opts ...Option) *Handler {
	h := &Handler{ledger: l, pub: pub, log: slog.New(slog.DiscardHandler), now: time.Now,
		source: events.SourceIntake, timeout: 5 * time.Second, newID: events.NewOrderID}
	for _, o := range opts {
		o(h)
	}
	h.mux = httpjson.NewMux()
	h.mux.HandleFunc("POST /orders", h.create)
	h.mux.HandleFunc("GET /orders/{id}", h.get)
	return h
}

// Patterns lists the routes.
func (h *Handler) Patterns() []string { return h.mux.Patterns() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Accepted is the answer to POST /orders.
type Accepted struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
}

// MaybeAccepted is the 503 answer to POST /orders when the ledger write's
// outcome is unknown: the shared error shape, and the order id to ask about
// or to retry with.
type MaybeAccepted struct {
	httpjson.ErrorBody
	OrderID string `json:"orderId"`
}

// Order is the answer to GET /orders/{id}.
type Order struct {
	OrderID  string        `json:"orderId"`
	Status   string        `json:"status"`
	Quantity int           `json:"quantity"`
	Numbers  []string      `json:"numbers"`
	Error    *events.Error `json:"error"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	req, err := h.readOrder(w, r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	log := h.log.With("orderId", req.OrderID)

	o, created, err := h.ledger.CreateOrGet(ctx, req)
	switch {
	case errors.Is(err, ledger.ErrPayloadConflict):
		httpjson.WriteError(w, r, &provider.Error{Kind: provider.ErrConflict, Field: "orderId",
			Message: "order " + req.OrderID + " already exists with another payload", Err: err})
		return
	case err != nil && notWritten(err):
		log.WarnContext(ctx, "order not accepted: NATS did not take the write", "error", err.Error())
		httpjson.WriteError(w, r, &provider.Error{Kind: provider.ErrUnavailable,
			Message: "the order queue (NATS JetStream) is unavailable; the order was not accepted, retry", Err: err})
		return
	case err != nil:
		log.WarnContext(ctx, "order may have been accepted: the ledger write's answer was lost", "error", err.Error())
		w.Header().Set("Location", "/orders/"+req.OrderID)
		status, body := httpjson.Describe(r.Context(), &provider.Error{Kind: provider.ErrUnavailable,
			Message: "the order queue (NATS JetStream) did not confirm the order; it may have been accepted: GET " +
				"/orders/" + req.OrderID + " tells, and a retry with Idempotency-Key " + req.OrderID + " is safe", Err: err})
		httpjson.Write(w, status, MaybeAccepted{ErrorBody: body, OrderID: req.OrderID})
		return
	}
	if !created && (o.RequestPublished || o.Status != ledger.StatusAccepted) {
		// The same order again: nothing new to do.
		w.Header().Set("Idempotent-Replayed", "true")
		h.answer(w, http.StatusOK, o)
		return
	}
	if ack, err := h.publish(ctx, req); err != nil {
		log.WarnContext(ctx, "order accepted, its message not published yet; the sweep publishes it", "error", err.Error())
	} else if _, err := h.ledger.MarkPublished(ctx, o, ack.Sequence); err != nil {
		// The message is in the stream; the mark only spares the sweep a
		// (deduplicated) publish.
		log.DebugContext(ctx, "request not marked published", "error", err.Error())
	}
	if h.notify != nil {
		h.notify(ctx, req)
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		h.answer(w, http.StatusOK, o)
		return
	}
	log.InfoContext(ctx, "order accepted", "quantity", req.Quantity, "city", req.City, "specId", int(req.SpecID))
	h.answer(w, http.StatusAccepted, o)
}

// notWritten reports whether a failed ledger write certainly did not reach
// the server: the connection refused it before sending, or no server
// answered for the stream.
func notWritten(err error) bool {
	for _, e := range []error{nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		nats.ErrReconnectBufExceeded, nats.ErrInvalidConnection, nats.ErrNoResponders, nats.ErrMaxPayload,
		jetstream.ErrNoStreamResponse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (h *Handler) answer(w http.ResponseWriter, status int, o *ledger.Order) {
	w.Header().Set("Location", "/orders/"+o.OrderID)
	httpjson.Write(w, status, Accepted{OrderID: o.OrderID, Status: string(o.Status)})
}

// readOrder decodes, names and validates the order of a POST.
func (h *Handler) readOrder(w http.ResponseWriter, r *http.Request) (events.OrderRequested, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return events.OrderRequested{}, err
		}
		return events.OrderRequested{}, provider.Invalid("body", "the request body could not be read")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return events.OrderRequested{}, provider.Invalid("body", "the request body is empty; send the order as a JSON object")
	}
	req, err := events.DecodeOrder(b)
	if err != nil {
		return req, err
	}
	if key, ok := r.Header[http.CanonicalHeaderKey(HeaderIdempotencyKey)]; ok {
		k := strings.TrimSpace(strings.Join(key, ","))
		if err := events.ValidateOrderID(k); err != nil {
			return req, provider.Invalid(HeaderIdempotencyKey, "the Idempotency-Key header must be 1 to 128 letters, digits, '-' and '_'")
		}
		if req.OrderID != "" && req.OrderID != k {
			return req, provider.Invalid("orderId", "orderId and the Idempotency-Key header name different orders")
		}
		req.OrderID = k
	}
	if req.OrderID == "" {
		req.OrderID = h.newID()
	}
	return req, req.Validate()
}

func (h *Handler) publish(ctx context.Context, req events.OrderRequested) (*jetstream.PubAck, error) {
	ev, err := events.New(h.source, h.now(), req)
	if err != nil {
		return nil, err
	}
	return h.pub.PublishEvent(ctx, ev)
}

func unavailable(err error) error {
	if k := provider.KindOf(err); k != provider.ErrUnavailable && k != provider.ErrInternal {
		return err
	}
	return &provider.Error{Kind: provider.ErrUnavailable, Message: "the order ledger (NATS JetStream) is unavailable; retry", Err: err}
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	id := r.PathValue("id")
	o, err := h.ledger.Get(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		httpjson.WriteError(w, r, &provider.Error{Kind: provider.ErrNotFound, Message: "no order " + quoteID(id)})
		return
	}
	if err != nil {
		httpjson.WriteError(w, r, unavailable(err))
		return
	}
	httpjson.Write(w, http.StatusOK, View(o))
}

// View is the public view of a ledger entry.
func View(o *ledger.Order) Order {
	return Order{OrderID: o.OrderID, Status: string(o.Status), Quantity: o.Quantity, Numbers: o.NumberList(), Error: o.Error}
}

// quoteID shows an id from a URL in a message without letting an odd one
// (long, with controls) into it.
func quoteID(id string) string {
	if events.ValidateOrderID(id) != nil {
		return "with that id"
	}
	return id
}
