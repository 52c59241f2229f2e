package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Plan is what `xnum setup` changes: the objects to create, the existing
// ones to update, and what it cannot change in place.
type Plan struct {
	Changes []Change
	// Problems are lacks NATS cannot fix in place (a push consumer, an ack
	// policy, a persist mode): the operator recreates those objects first,
	// and Apply refuses to run while there are any.
	Problems []string
}

// Change is one object to create or update.
type Change struct {
	Action  string   // "create" or "update"
	Object  string   // "stream XNUM", "consumer XNUM/xnum-buy", "bucket XNUM_ORDERS"
	Details []string // its settings (create), or what changes (update)
	apply   func(ctx context.Context) error
}

func (c Change) String() string {
	return c.Action + " " + c.Object + ": " + strings.Join(c.Details, "; ")
}

// PlanSetup compares xnum's objects with what the options ask for and what
// the code needs, changing nothing. A missing object is to be created with
// the options' settings; an existing one is updated only where it lacks what
// the code needs, and in its replicas when the options set them
// (WithReplicas): the operator's other settings stay.
func PlanSetup(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Plan, error) {
	var asked Config
	for _, o := range opts {
		o(&asked)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	replicas := map[string]int{} // of each stream, as it will be
	for _, o := range objects(c) {
		f, err := o.lookup(ctx, js, &Queue{})
		if errors.Is(err, errMissing) {
			replicas[o.stream] = c.Replicas
			p.Changes = append(p.Changes, Change{Action: "create", Object: o.label(), Details: o.settings(),
				apply: func(ctx context.Context) error { return o.create(ctx, js) }})
			continue
		}
		if err != nil {
			return nil, err
		}
		var details []string
		for _, l := range o.unmet(f) {
			if l.fix == nil {
				p.Problems = append(p.Problems, o.label()+" needs "+l.text)
				continue
			}
			l.fix(f)
			details = append(details, l.text)
		}
		if f.stream != nil {
			have := max(f.stream.Replicas, 1)
			replicas[o.stream] = have
			if asked.Replicas != 0 && have != c.Replicas {
				details = append(details, fmt.Sprintf("replicas %d -> %d", have, c.Replicas))
				f.stream.Replicas, replicas[o.stream] = c.Replicas, c.Replicas
			}
		} else {
			// A consumer of 0 replicas has its stream's.
			have := f.consumer.Replicas
			if have == 0 {
				have = replicas[o.stream]
			}
			if asked.Replicas != 0 && have != c.Replicas {
				details = append(details, fmt.Sprintf("replicas %d -> %d", have, c.Replicas))
				f.consumer.Replicas = c.Replicas
			}
		}
		if len(details) > 0 {
			p.Changes = append(p.Changes, Change{Action: "update", Object: o.label(), Details: details,
				apply: func(ctx context.Context) error { return o.update(ctx, js, f) }})
		}
	}
	return p, nil
}

// Apply makes the changes in order, calling done after each. It refuses to
// start while the plan has problems, and stops at the first change NATS
// refuses.
func (p *Plan) Apply(ctx context.Context, done func(Change)) error {
	if len(p.Problems) > 0 {
		return fmt.Errorf("queue: nothing changed: %s", strings.Join(p.Problems, "; "))
	}
	for _, c := range p.Changes {
		if err := c.apply(ctx); err != nil {
			return fmt.Errorf("queue: %s %s: %w", c.Action, c.Object, err)
		}
		if done != nil {
			done(c)
		}
	}
	return nil
}

// update writes the object's configuration with the plan's changes; every
// other setting is the one read.
func (o object) update(ctx context.Context, js jetstream.JetStream, f found) error {
	if f.consumer != nil {
		_, err := js.UpdateConsumer(ctx, o.stream, *f.consumer)
		return err
	}
	if _, err := js.UpdateStream(ctx, *f.stream); err != nil {
		return err
	}
	// The server answers before every server has the stream's new peers,
	// and refuses to scale a consumer beyond the peers it knows.
	for want := max(f.stream.Replicas, 1); ; {
		s, err := js.Stream(ctx, o.stream)
		if err != nil {
			return err
		}
		if ci := s.CachedInfo().Cluster; ci == nil || len(ci.Replicas)+1 >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d replicas: %w", want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settings describe what a created object gets.
func (o object) settings() []string {
	switch {
	case o.newStream != nil:
		s := o.newStream
		out := []string{"subjects " + strings.Join(s.Subjects, ", "), fmt.Sprintf("replicas %d", s.Replicas),
			strings.ToLower(s.Storage.String()) + " storage", "max age " + days(s.MaxAge)}
		if s.Duplicates > 0 {
			out = append(out, "duplicate window "+s.Duplicates.String())
		}
		return out
	case o.newBucket != nil:
		b := o.newBucket
		return []string{fmt.Sprintf("history %d", b.History), fmt.Sprintf("replicas %d", b.Replicas), strings.ToLower(b.Storage.String()) + " storage"}
	default:
		cc := o.newConsumer
		out := []string{"pull", "filter subject " + cc.FilterSubject, "explicit acks", "ack wait " + cc.AckWait.String()}
		if cc.MaxDeliver > 0 {
			out = append(out, fmt.Sprintf("max deliver %d", cc.MaxDeliver))
		}
		if len(cc.BackOff) > 0 {
			out = append(out, fmt.Sprintf("backoff %v", cc.BackOff))
		}
		return append(out, fmt.Sprintf("replicas %d", cc.Replicas))
	}
}

func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
