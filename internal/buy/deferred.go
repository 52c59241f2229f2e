package buy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// Dial opens the function's connection to NATS.
type Dial func(ctx context.Context) (*nats.Conn, error)

// Bounds of a deferred set-up.
const (
	// setupTimeout bounds one attempt: a connect and New's look-ups.
	setupTimeout = 10 * time.Second
	// retryAfter spaces the attempts a stream of requests would make while
	// NATS is away.
	retryAfter = time.Second
)

// Deferred returns the buy function with its connection to NATS and its
// JetStream set-up (New) deferred, as FC runs it: the process serves at
// once, and dial and New run at FC's initializer hook, else at the first
// request or event that needs them. Until they succeed, the routes answer
// 503 Unavailable in the shared JSON error shape and event invocations fail
// (so their triggers deliver them again), rather than the process failing
// to start (FC's FunctionNotStarted); each later need tries again, one
// attempt at a time and at most one a second. The initializer succeeds
// either way, since a failed initializer is answered by FC, not by the
// function. The routes and the consumer are those of cfg.Role.
func Deferred(dial Dial, p Provider, cfg Config) (trigger.Function, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.checkRole(); err != nil {
		return trigger.Function{}, err
	}
	d := &deferred{dial: dial, provider: p, cfg: cfg, log: cfg.Logger, now: time.Now}
	fn := trigger.Function{
		Name: "buy",
		Events: trigger.EventHandlerFunc(func(ctx context.Context, msgs []trigger.Message) []error {
			f, err := d.get(ctx)
			if err != nil {
				errs := make([]error, len(msgs))
				for i := range errs {
					errs[i] = err
				}
				return errs
			}
			return f.Events.HandleEvents(ctx, msgs)
		}),
		Initialize: func(ctx context.Context) error {
			if _, err := d.get(ctx); err != nil {
				d.log.WarnContext(ctx, "not set up at initialization; requests answer 503 until NATS is reachable")
			}
			return nil
		},
		PreStop: d.close,
		Ready:   d.ready,
	}
	if cfg.Role != RoleWorker {
		fn.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := d.get(r.Context())
			if err != nil {
				httpjson.WriteError(w, r, err)
				return
			}
			f.HTTP.ServeHTTP(w, r)
		})
	}
	if cfg.Consumer {
		fn.Background = []func(context.Context) error{d.consume}
	}
	return fn, nil
}

// deferred builds the function once, on demand.
type deferred struct {
	dial     Dial
	provider Provider
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	fn       *Function
	conn     *nats.Conn
	attempt  chan struct{} // closed when the attempt under way ends
	lastErr  error
	lastFail time.Time
}

// get returns the function, setting it up first if need be: the caller
// starts an attempt or waits for the one under way, within ctx.
func (d *deferred) get(ctx context.Context) (*Function, error) {
	d.mu.Lock()
	if d.fn != nil {
		defer d.mu.Unlock()
		return d.fn, nil
	}
	if d.attempt == nil {
		if d.lastErr != nil && d.now().Sub(d.lastFail) < retryAfter {
			defer d.mu.Unlock()
			return nil, d.lastErr
		}
		d.attempt = make(chan struct{})
		go d.setUp(context.WithoutCancel(ctx), d.attempt)
	}
	attempt := d.attempt
	d.mu.Unlock()
	select {
	case <-attempt:
	case <-ctx.Done():
		return nil, queue.Unavailable("connect to NATS", ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fn != nil {
		return d.fn, nil
	}
	return nil, d.lastErr
}

// setUp is one attempt; it runs to its own end, so a caller that gives up
// does not waste it for the next.
func (d *deferred) setUp(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	start := d.now()
	fn, conn, err := d.build(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	defer close(done)
	d.attempt = nil
	if err != nil {
		d.lastErr, d.lastFail = err, d.now()
		d.log.WarnContext(ctx, "NATS JetStream set-up failed; the next need tries again", "err", err)
		return
	}
	d.fn, d.conn, d.lastErr = fn, conn, nil
	d.log.InfoContext(ctx, "NATS JetStream set up", "url", conn.ConnectedUrlRedacted(), "took", d.now().Sub(start).String())
}

func (d *deferred) build(ctx context.Context) (*Function, *nats.Conn, error) {
	conn, err := d.dial(ctx)
	if err != nil {
		return nil, nil, queue.Unavailable("connect to NATS", err)
	}
	js, err := jetstream.New(conn)
	if err == nil {
		var fn *Function
		if fn, err = New(ctx, js, d.provider, d.cfg); err == nil {
			return fn, conn, nil
		}
	}
	conn.Close()
	return nil, nil, queue.Unavailable("set up JetStream", err)
}

// ready reports whether the function is set up, connected to NATS, and its
// JetStream objects answer.
func (d *deferred) ready(ctx context.Context) error {
	f, err := d.get(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if !conn.IsConnected() {
		return queue.Unavailable("NATS", errors.New("not connected; reconnecting"))
	}
	return f.Ready(ctx)
}

// consume runs the long-lived consumer once the function is set up,
// trying again while NATS is away.
func (d *deferred) consume(ctx context.Context) error {
	for {
		f, err := d.get(ctx)
		if err == nil {
			return f.consume(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryAfter):
		}
	}
}

// close drains the connection, once: FC's preStop hook and the process's
// stop both call it.
func (d *deferred) close(context.Context) error {
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if conn == nil {
		return nil
	}
	if err := conn.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionDraining) {
		return err
	}
	return nil
}
