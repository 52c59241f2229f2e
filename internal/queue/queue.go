// Package queue sets up xnum's JetStream objects and publishes to them: the
// stream XNUM over the order and number subjects, the durable pull consumer
// that feeds the buy worker, a stream and consumer that keep the consumer's
// max-deliveries advisories, the stream of the cloud's number reports, the
// KeyValue bucket that is the order ledger, and the bucket of the rate the
// workers share. Setup opens them for a function (creating what is missing,
// changing nothing that exists); PlanSetup and Apply bring existing objects
// to what xnum needs, on an operator's command (`xnum setup`).
package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Default names of the JetStream objects.
const (
	StreamName         = "XNUM"
	ConsumerName       = "xnum-buy"
	LedgerBucket       = "XNUM_ORDERS"
	AdvisoryStreamName = "XNUM_ADVISORIES"
	AdvisoryConsumer   = "xnum-buy-max-deliveries"
	// ReportsStreamName keeps the cloud's number reports
	// (events.SubjectNumberReports) for as long as the events: whoever
	// settles an attempt in doubt reads back the reports of its window.
	ReportsStreamName = "XNUM_REPORTS"
	LimitsBucket      = "XNUM_LIMITS"
)

// MaxDeliveriesSubject is the subject of the server's advisory about a
// message of stream's consumer that was delivered MaxDeliver times without
// an ack.
func MaxDeliveriesSubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// MaxDeliveriesAdvisory is the body of that advisory (the server's
// io.nats.jetstream.advisory.v1.max_deliver).
type MaxDeliveriesAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
}

// Config holds the names of the objects and the settings Setup creates them
// with (an existing object keeps its own). The zero value of a field means
// its default.
type Config struct {
	Stream   string
	Consumer string
	Bucket   string
	Limits   string // the rate limits' bucket (LimitsBucket)
	// Replicas of the streams, consumers and bucket (1; 3 or 5 in a cluster).
	Replicas int
	// Storage of the streams and bucket (file).
	Storage jetstream.StorageType
	// DuplicateWindow is how long the stream remembers a Nats-Msg-Id
	// (10 minutes): a repeat publish within it is dropped.
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps events (30 days).
	MaxAge time.Duration
	// AckWait is how long a delivery may go without an ack or an in-progress
	// signal before it is delivered again (30s). With a Backoff, the
	// server takes Backoff[0] instead.
	AckWait time.Duration
	// MaxDeliver is how often one order.requested message is delivered (10).
	MaxDeliver int
	// Backoff are the successive redelivery delays after ack timeouts
	// (none: AckWait every time). At most MaxDeliver of them.
	Backoff []time.Duration
	// MaxAckPending bounds the deliveries in flight (1000).
	MaxAckPending int
	// LedgerHistory is how many revisions of an order the bucket keeps (16;
	// at most 64).
	LedgerHistory uint8
}

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = StreamName
	}
	if c.Consumer == "" {
		c.Consumer = ConsumerName
	}
	if c.Bucket == "" {
		c.Bucket = LedgerBucket
	}
	if c.Limits == "" {
		c.Limits = LimitsBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if len(c.Backoff) > 0 {
		c.AckWait = c.Backoff[0] // the server's rule, made visible
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
	if c.LedgerHistory == 0 {
		c.LedgerHistory = 16
	}
}

func (c Config) validate() error {
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		// An even count survives no more lost servers than one fewer.
		return fmt.Errorf("queue: replicas %d, want 1, 3 or 5", c.Replicas)
	case c.DuplicateWindow < time.Second || c.DuplicateWindow > c.MaxAge:
		return fmt.Errorf("queue: duplicate window %v, want at least 1s and at most the max age %v", c.DuplicateWindow, c.MaxAge)
	case c.MaxDeliver < 2:
		return fmt.Errorf("queue: max deliver %d, want at least 2", c.MaxDeliver)
	case len(c.Backoff) > c.MaxDeliver:
		return fmt.Errorf("queue: %d backoff steps for max deliver %d", len(c.Backoff), c.MaxDeliver)
	case c.LedgerHistory > 64:
		return fmt.Errorf("queue: ledger history %d, want at most 64", c.LedgerHistory)
	case c.AckWait < 100*time.Millisecond:
		return fmt.Errorf("queue: ack wait %v too short", c.AckWait)
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("queue: backoff step %v, want > 0", d)
		}
	}
	return nil
}

// Option sets a Config field.
type Option func(*Config)

func WithStream(name string) Option              { return func(c *Config) { c.Stream = name } }
func WithConsumer(name string) Option            { return func(c *Config) { c.Consumer = name } }
func WithBucket(name string) Option              { return func(c *Config) { c.Bucket = name } }
func WithReplicas(n int) Option                  { return func(c *Config) { c.Replicas = n } }
func WithStorage(s jetstream.StorageType) Option { return func(c *Config) { c.Storage = s } }
func WithDuplicateWindow(d time.Duration) Option { return func(c *Config) { c.DuplicateWindow = d } }
func WithMaxAge(d time.Duration) Option          { return func(c *Config) { c.MaxAge = d } }
func WithAckWait(d time.Duration) Option         { return func(c *Config) { c.AckWait = d } }
func WithMaxDeliver(n int) Option                { return func(c *Config) { c.MaxDeliver = n } }
func WithBackoff(steps ...time.Duration) Option  { return func(c *Config) { c.Backoff = steps } }
func WithMaxAckPending(n int) Option             { return func(c *Config) { c.MaxAckPending = n } }
func WithLedgerHistory(n uint8) Option           { return func(c *Config) { c.LedgerHistory = n } }

// Queue is the set-up JetStream objects.
type Queue struct {
	JS         jetstream.JetStream
	Stream     jetstream.Stream
	Consumer   jetstream.Consumer // durable pull consumer on order.requested
	Advisories jetstream.Consumer // max-deliveries advisories of Consumer
	Reports    jetstream.Stream   // the cloud's number reports (ReportsStreamName)
	Ledger     jetstream.KeyValue
	Limits     jetstream.KeyValue // rate limits the workers share
	// Config is the objects' actual settings where they existed before
	// (an operator's max deliver, ack wait, replicas...), the options'
	// otherwise.
	Config Config
}

// Setup opens xnum's JetStream objects for a function: it creates those
// that are missing, with the options' settings, and never changes one that
// exists, so an operator's settings (replicas, limits, ack wait...) stay as
// they are. An existing object that lacks something the code needs (a
// subject, explicit acks, a pull consumer...) stops it with one
// *MismatchError naming every such lack; `xnum setup` fixes what can be
// fixed in place (Plan). Setup only reads when everything exists, so
// every process may call it at start.
func Setup(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Queue, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	q := &Queue{JS: js, Config: c}
	var lacks []string
	for _, o := range objects(c) {
		found, err := o.open(ctx, js, q)
		if err != nil {
			return nil, err
		}
		for _, l := range o.unmet(found) {
			lacks = append(lacks, o.label()+" needs "+l.text)
		}
	}
	if len(lacks) > 0 {
		return nil, &MismatchError{Lacks: lacks}
	}
	return q, nil
}

func newConfig(opts []Option) (Config, error) {
	var c Config
	for _, o := range opts {
		o(&c)
	}
	c.defaults()
	return c, c.validate()
}

// MismatchError is an existing JetStream object that lacks what xnum's code
// needs. Functions stop on it: an operator fixes the objects, with `xnum
// setup` where the server can change them in place.
type MismatchError struct {
	Lacks []string // "consumer XNUM/xnum-buy needs explicit acks (has none)", ...
}

func (e *MismatchError) Error() string {
	return "queue: " + strings.Join(e.Lacks, "; ") + " (xnum setup fixes what NATS can change in place; see the README)"
}

// Unavailable wraps a NATS failure as provider.ErrUnavailable, so callers map
// it to 503 and retry.
func Unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		return err
	}
	return &provider.Error{Kind: provider.ErrUnavailable, Provider: "nats", Op: op,
		Message: "NATS JetStream is unavailable", Err: err}
}

// Connect dials NATS with settings fit for the money path: it keeps
// reconnecting forever, and it does not buffer writes while reconnecting, so
// a write during an outage fails at once instead of being sent later, after
// its caller gave up on it (a ledger entry created after the client was told
// 503, an attempt recorded after the worker decided not to buy). opts come
// after the defaults and win.
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name("xnum"),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, Unavailable("connect", err)
	}
	return nc, nil
}
