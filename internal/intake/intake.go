// Package intake is the buy function's HTTP routes: POST /orders takes an
// order in and queues it, GET /orders/{id} shows it from the ledger.
//
// # Ordering of a new order, and why
//
// POST /orders writes the ledger entry first (kv.Create, atomic on the id)
// and publishes order.requested (Nats-Msg-Id = order id) second:
//
//   - The id is claimed atomically, so of two racing POSTs with one id and
//     different bodies exactly one wins and the other gets 409 — a check
//     against the stream could not tell (JetStream's duplicate detection
//     drops the second silently).
//   - If the publish fails the entry is deleted again (compare-and-set on
//     its revision) and the answer is 503: nothing is left behind. If that
//     delete fails too (NATS went away between the two writes), the entry
//     stays accepted with requestPublished=false; no worker can see it
//     without a message, so nothing is bought, and the client's retry with
//     the same id publishes it. A publish whose ack was lost but which was
//     stored is harmless as well: the worker processes the message and
//     creates the entry again from it.
//   - Nothing spends money before a worker claims the entry, so an entry
//     without a message costs nothing.
package intake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	case err != nil:
		httpjson.WriteError(w, r, unavailable(err))
		return
	}
	if !created && (o.RequestPublished || o.Status != ledger.StatusAccepted) {
		// The same order again: nothing new to do.
		w.Header().Set("Idempotent-Replayed", "true")
		h.answer(w, http.StatusOK, o)
		return
	}
	if err := h.publish(ctx, req); err != nil {
		if created {
			if moved := h.undo(r.Context(), o, log); moved != nil {
				// A worker got the message after all: its ack was what got lost.
				h.answer(w, http.StatusAccepted, moved)
				return
			}
		}
		log.WarnContext(ctx, "order not queued", "error", err.Error())
		httpjson.WriteError(w, r, unavailable(err))
		return
	}
	if _, err := h.ledger.MarkRequestPublished(ctx, o); err != nil {
		// The message is in the stream; the flag only spares a later
		// identical POST a (deduplicated) publish.
		log.DebugContext(ctx, "request not marked published", "error", err.Error())
	}
	if created {
		log.InfoContext(ctx, "order accepted", "quantity", req.Quantity, "city", req.City, "specId", int(req.SpecID))
	}
	h.answer(w, http.StatusAccepted, o)
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

func (h *Handler) publish(ctx context.Context, req events.OrderRequested) error {
	ev, err := events.New(h.source, h.now(), req)
	if err != nil {
		return err
	}
	_, err = h.pub.PublishEvent(ctx, ev)
	return err
}

// undo deletes the entry of an order whose message could not be published,
// if nothing else touched it. When a worker moved the entry meanwhile, the
// message was stored after all, and undo returns the moved order.
func (h *Handler) undo(ctx context.Context, o *ledger.Order, log *slog.Logger) *ledger.Order {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	err := h.ledger.Delete(uctx, o)
	if err == nil {
		return nil
	}
	if errors.Is(err, ledger.ErrStale) {
		if now, gerr := h.ledger.Get(uctx, o.OrderID); gerr == nil && (now.Status != ledger.StatusAccepted || now.RequestPublished) {
			return now
		}
	}
	log.WarnContext(ctx, "unpublished order left in the ledger as accepted; a retry of the same request publishes it",
		"error", err.Error())
	return nil
}

func unavailable(err error) error {
	if k := provider.KindOf(err); k != provider.ErrUnavailable && k != provider.ErrInternal {
		return err
	}
	return &provider.Error{Kind: provider.ErrUnavailable,
		Message: "the order queue (NATS JetStream) is unavailable; the order was not accepted, retry with the same Idempotency-Key", Err: err}
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
