package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
)

// object is one of xnum's JetStream objects: how it is created, and what
// the code needs of it when it exists. Streams and buckets are looked at
// through their stream's configuration, consumers through theirs.
type object struct {
	kind   string // "stream", "consumer" or "bucket"
	name   string // the stream's, consumer's or bucket's name
	stream string // the stream: itself, a consumer's stream, KV_<bucket>

	newStream   *jetstream.StreamConfig   // a stream to create
	newBucket   *jetstream.KeyValueConfig // a bucket to create
	newConsumer *jetstream.ConsumerConfig // a consumer to create

	streamNeeds   []need[jetstream.StreamConfig]
	consumerNeeds []need[jetstream.ConsumerConfig]

	// keep hands the opened object to the Queue.
	keep func(q *Queue, s jetstream.Stream, c jetstream.Consumer, kv jetstream.KeyValue)
}

// need is one thing the code needs of an existing object.
type need[C any] struct {
	what string         // as an operator reads it: "explicit acks"
	met  func(C) bool   // whether the object has it
	has  func(C) string // what it has instead, for the message
	fix  func(*C)       // sets it; nil when NATS cannot change it in place
	why  string         // without a fix: what the operator does instead
}

func (o object) label() string {
	if o.kind == "consumer" {
		return "consumer " + o.stream + "/" + o.name
	}
	return o.kind + " " + o.name
}

// found is an existing object's configuration.
type found struct {
	stream   *jetstream.StreamConfig
	consumer *jetstream.ConsumerConfig
}

// lack is one need an existing object does not meet.
type lack struct {
	text string      // what it needs, what it has, and for a lack NATS cannot fix, what to do
	fix  func(found) // meets the need in found's configuration; nil when NATS cannot change it in place
}

// unmet is what the existing object lacks.
func (o object) unmet(f found) []lack {
	var out []lack
	if f.stream != nil {
		for _, n := range o.streamNeeds {
			if !n.met(*f.stream) {
				out = append(out, lackOf(n, *f.stream, func(f found) { n.fix(f.stream) }))
			}
		}
	}
	if f.consumer != nil {
		for _, n := range o.consumerNeeds {
			if !n.met(*f.consumer) {
				out = append(out, lackOf(n, *f.consumer, func(f found) { n.fix(f.consumer) }))
			}
		}
	}
	return out
}

func lackOf[C any](n need[C], have C, fix func(found)) lack {
	text := n.what
	if n.has != nil {
		text += " (has " + n.has(have) + ")"
	}
	if n.fix == nil {
		return lack{text: text + ": " + n.why}
	}
	return lack{text: text, fix: fix}
}

// objects are xnum's JetStream objects for c, in the order they are
// created: a stream before its consumers.
func objects(c Config) []object {
	advSubject := MaxDeliveriesSubject(c.Stream, c.Consumer)
	advStream := AdvisoryStreamName
	if c.Stream != StreamName {
		advStream = c.Stream + "_ADVISORIES"
	}
	durable := []need[jetstream.StreamConfig]{{
		what: "persist mode default (a write is stored before it is acknowledged)",
		met:  func(s jetstream.StreamConfig) bool { return s.PersistMode == jetstream.DefaultPersistMode },
		has:  func(s jetstream.StreamConfig) string { return "async" },
		why:  "NATS cannot change it in place: recreate it",
	}}
	return []object{
		{
			kind: "stream", name: c.Stream, stream: c.Stream,
			newStream: &jetstream.StreamConfig{
				Name:        c.Stream,
				Description: "xnum order and number events",
				Subjects:    []string{events.SubjectOrders, events.SubjectNumbers},
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardOld,
				MaxAge:      c.MaxAge,
				Storage:     c.Storage,
				Replicas:    c.Replicas,
				Duplicates:  c.DuplicateWindow,
			},
			streamNeeds: append([]need[jetstream.StreamConfig]{
				subjectNeed(events.SubjectOrders),
				subjectNeed(events.SubjectNumbers),
				acksPublishes,
			}, durable...),
			keep: func(q *Queue, s jetstream.Stream, _ jetstream.Consumer, _ jetstream.KeyValue) {
				q.Stream = s
				si := s.CachedInfo().Config
				q.Config.Replicas, q.Config.MaxAge, q.Config.DuplicateWindow = max(si.Replicas, 1), si.MaxAge, si.Duplicates
			},
		},
		{
			kind: "consumer", name: c.Consumer, stream: c.Stream,
			newConsumer: &jetstream.ConsumerConfig{
				Durable:       c.Consumer,
				Description:   "xnum buy worker",
				FilterSubject: events.SubjectOrderRequested,
				DeliverPolicy: jetstream.DeliverAllPolicy,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       c.AckWait,
				MaxDeliver:    c.MaxDeliver,
				BackOff:       c.Backoff,
				MaxAckPending: c.MaxAckPending,
				Replicas:      c.Replicas,
			},
			consumerNeeds: append(workerConsumer(events.SubjectOrderRequested), need[jetstream.ConsumerConfig]{
				// The last delivery ends the order (failed or in doubt) so
				// that no order loops for ever.
				what: "a limited max deliver, at least 2",
				met:  func(cc jetstream.ConsumerConfig) bool { return cc.MaxDeliver >= 2 },
				has:  func(cc jetstream.ConsumerConfig) string { return fmt.Sprint(cc.MaxDeliver) },
				fix:  func(cc *jetstream.ConsumerConfig) { cc.MaxDeliver = c.MaxDeliver },
			}),
			keep: func(q *Queue, _ jetstream.Stream, con jetstream.Consumer, _ jetstream.KeyValue) {
				q.Consumer = con
				cc := con.CachedInfo().Config
				q.Config.AckWait, q.Config.MaxDeliver, q.Config.Backoff, q.Config.MaxAckPending = cc.AckWait, cc.MaxDeliver, cc.BackOff, cc.MaxAckPending
			},
		},
		{
			// The server sends the advisory only to whoever listens at that
			// moment; a stream keeps it until a worker has handled it.
			kind: "stream", name: advStream, stream: advStream,
			newStream: &jetstream.StreamConfig{
				Name:        advStream,
				Description: "max-deliveries advisories of " + c.Consumer,
				Subjects:    []string{advSubject},
				Retention:   jetstream.LimitsPolicy,
				MaxAge:      c.MaxAge,
				Storage:     c.Storage,
				Replicas:    c.Replicas,
			},
			streamNeeds: []need[jetstream.StreamConfig]{subjectNeed(advSubject)},
			keep:        func(*Queue, jetstream.Stream, jetstream.Consumer, jetstream.KeyValue) {},
		},
		{
			kind: "consumer", name: c.Consumer + "-max-deliveries", stream: advStream,
			newConsumer: &jetstream.ConsumerConfig{
				Durable:       c.Consumer + "-max-deliveries",
				Description:   "ends orders whose last delivery was not acked",
				FilterSubject: advSubject,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       c.AckWait,
				MaxDeliver:    -1, // each try is cheap and ends in a ledger write
				MaxAckPending: c.MaxAckPending,
				Replicas:      c.Replicas,
			},
			consumerNeeds: workerConsumer(advSubject),
			keep: func(q *Queue, _ jetstream.Stream, con jetstream.Consumer, _ jetstream.KeyValue) {
				q.Advisories = con
			},
		},
		{
			// Reports are read back by time, never consumed: no durable
			// consumer.
			kind: "stream", name: ReportsStreamName, stream: ReportsStreamName,
			newStream: &jetstream.StreamConfig{
				Name:        ReportsStreamName,
				Description: "the cloud's NumberManagementReport messages",
				Subjects:    []string{events.SubjectNumberReports},
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardOld,
				MaxAge:      c.MaxAge,
				Storage:     c.Storage,
				Replicas:    c.Replicas,
				Duplicates:  c.DuplicateWindow,
			},
			streamNeeds: []need[jetstream.StreamConfig]{subjectNeed(events.SubjectNumberReports), acksPublishes},
			keep: func(q *Queue, s jetstream.Stream, _ jetstream.Consumer, _ jetstream.KeyValue) {
				q.Reports = s
			},
		},
		{
			kind: "bucket", name: c.Bucket, stream: "KV_" + c.Bucket,
			newBucket: &jetstream.KeyValueConfig{
				Bucket:      c.Bucket,
				Description: "xnum order ledger",
				History:     c.LedgerHistory,
				Storage:     c.Storage,
				Replicas:    c.Replicas,
			},
			streamNeeds: append([]need[jetstream.StreamConfig]{subjectNeed("$KV." + c.Bucket + ".>")}, durable...),
			keep: func(q *Queue, s jetstream.Stream, _ jetstream.Consumer, kv jetstream.KeyValue) {
				q.Ledger = kv
				q.Config.LedgerHistory = uint8(min(s.CachedInfo().Config.MaxMsgsPerSubject, 64))
			},
		},
		{
			kind: "bucket", name: c.Limits, stream: "KV_" + c.Limits,
			newBucket: &jetstream.KeyValueConfig{
				Bucket:      c.Limits,
				Description: "rate limits the xnum workers share",
				History:     1,
				Storage:     c.Storage,
				Replicas:    c.Replicas,
			},
			streamNeeds: []need[jetstream.StreamConfig]{subjectNeed("$KV." + c.Limits + ".>")},
			keep: func(q *Queue, _ jetstream.Stream, _ jetstream.Consumer, kv jetstream.KeyValue) {
				q.Limits = kv
			},
		},
	}
}

// acksPublishes is a stream answering each publish: xnum waits for it.
var acksPublishes = need[jetstream.StreamConfig]{
	what: "acknowledged publishes (no_ack false)",
	met:  func(s jetstream.StreamConfig) bool { return !s.NoAck },
	fix:  func(s *jetstream.StreamConfig) { s.NoAck = false },
}

// subjectNeed is a stream capturing every subject that subject matches.
func subjectNeed(subject string) need[jetstream.StreamConfig] {
	return need[jetstream.StreamConfig]{
		what: "subject " + subject,
		met: func(s jetstream.StreamConfig) bool {
			return slices.ContainsFunc(s.Subjects, func(have string) bool { return covers(have, subject) })
		},
		has: func(s jetstream.StreamConfig) string { return strings.Join(s.Subjects, ", ") },
		fix: func(s *jetstream.StreamConfig) {
			// The server refuses overlapping subjects: drop what subject covers.
			s.Subjects = append(slices.DeleteFunc(s.Subjects, func(have string) bool { return covers(subject, have) }), subject)
		},
	}
}

// workerConsumer is what a consumer the worker pulls from needs.
func workerConsumer(filter string) []need[jetstream.ConsumerConfig] {
	return []need[jetstream.ConsumerConfig]{
		{
			what: "to be a pull consumer",
			met:  func(cc jetstream.ConsumerConfig) bool { return cc.DeliverSubject == "" },
			has:  func(cc jetstream.ConsumerConfig) string { return "deliver subject " + cc.DeliverSubject },
			why:  "NATS cannot change it in place: delete it and run xnum setup",
		},
		{
			what: "explicit acks",
			met:  func(cc jetstream.ConsumerConfig) bool { return cc.AckPolicy == jetstream.AckExplicitPolicy },
			has:  func(cc jetstream.ConsumerConfig) string { return cc.AckPolicy.String() },
			why:  "NATS cannot change it in place: delete it and run xnum setup",
		},
		{
			what: "filter subject " + filter,
			met: func(cc jetstream.ConsumerConfig) bool {
				return cc.FilterSubject == filter && len(cc.FilterSubjects) == 0 ||
					cc.FilterSubject == "" && slices.Equal(cc.FilterSubjects, []string{filter})
			},
			has: func(cc jetstream.ConsumerConfig) string {
				if cc.FilterSubject == "" && len(cc.FilterSubjects) == 0 {
					return "none"
				}
				return strings.Join(append([]string{cc.FilterSubject}, cc.FilterSubjects...), " ")
			},
			fix: func(cc *jetstream.ConsumerConfig) { cc.FilterSubject, cc.FilterSubjects = filter, nil },
		},
	}
}

// covers tells whether the subject filter have matches every subject that
// want matches.
func covers(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i, t := range h {
		switch {
		case t == ">":
			return i < len(w)
		case i >= len(w):
			return false
		case t == "*":
			if w[i] == ">" {
				return false
			}
		case t != w[i]:
			return false
		}
	}
	return len(h) == len(w)
}

// open finds the object, or creates it when it is missing, and hands it to
// q. It returns the object's configuration, for checking.
func (o object) open(ctx context.Context, js jetstream.JetStream, q *Queue) (found, error) {
	f, err := o.lookup(ctx, js, q)
	if !errors.Is(err, errMissing) {
		return f, err
	}
	// Another process may create it at the same time: then it is checked
	// like any existing object.
	if err := o.create(ctx, js); err != nil && !alreadyExists(err) {
		return found{}, createError(js, o.label(), err)
	}
	// In a cluster a new object answers once its replicas elected a leader.
	for {
		f, err := o.lookup(ctx, js, q)
		if !errors.Is(err, errMissing) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return found{}, Unavailable("open "+o.label(), fmt.Errorf("created, but not found: %w", ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errMissing = errors.New("missing")

// lookup reads the object; errMissing when it does not exist.
func (o object) lookup(ctx context.Context, js jetstream.JetStream, q *Queue) (found, error) {
	switch o.kind {
	case "consumer":
		con, err := js.Consumer(ctx, o.stream, o.name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return found{}, errMissing
		}
		if errors.Is(err, jetstream.ErrNotPullConsumer) {
			// Read it only to say what it lacks.
			push, err := js.PushConsumer(ctx, o.stream, o.name)
			if err != nil {
				return found{}, Unavailable("look up "+o.label(), err)
			}
			cfg := push.CachedInfo().Config
			return found{consumer: &cfg}, nil
		}
		if err != nil {
			return found{}, Unavailable("look up "+o.label(), err)
		}
		o.keep(q, nil, con, nil)
		cfg := con.CachedInfo().Config
		return found{consumer: &cfg}, nil
	default:
		s, err := js.Stream(ctx, o.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return found{}, errMissing
		}
		if err != nil {
			return found{}, Unavailable("look up "+o.label(), err)
		}
		var kv jetstream.KeyValue
		if o.kind == "bucket" {
			if kv, err = js.KeyValue(ctx, o.name); err != nil {
				return found{}, Unavailable("open "+o.label(), err)
			}
		}
		o.keep(q, s, nil, kv)
		cfg := s.CachedInfo().Config
		return found{stream: &cfg}, nil
	}
}

func (o object) create(ctx context.Context, js jetstream.JetStream) error {
	var err error
	switch {
	case o.newStream != nil:
		_, err = js.CreateStream(ctx, *o.newStream)
	case o.newBucket != nil:
		_, err = js.CreateKeyValue(ctx, *o.newBucket)
	default:
		_, err = js.CreateConsumer(ctx, o.stream, *o.newConsumer)
	}
	return err
}

func alreadyExists(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrBucketExists) ||
		errors.Is(err, jetstream.ErrConsumerExists)
}

// createError says that a missing object could not be made. A user without
// the right to create it (the functions' usual permissions) gets no answer
// but a permissions violation on its connection, and the request times out.
func createError(js jetstream.JetStream, label string, err error) error {
	if nc := js.Conn(); nc != nil && errors.Is(nc.LastError(), nats.ErrPermissionViolation) {
		return fmt.Errorf("queue: %s is missing and this NATS user may not create it (%v): run xnum setup as an operator", label, nc.LastError())
	}
	return Unavailable("create "+label, fmt.Errorf("%s is missing and could not be created (an operator creates it with xnum setup): %w", label, err))
}
