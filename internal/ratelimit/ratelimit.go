// Package ratelimit spaces calls at a rate that every process sharing one
// JetStream KeyValue entry keeps together: the buy workers on several
// machines or FC instances stay within the account's QPS for BuySecretNo.
//
// The entry holds the time of the next free slot. A caller reads it, takes
// the slot (the later of that time and now), writes slot + 1/rate with a
// compare-and-set on the revision it read, and sleeps until its slot; a
// caller that lost the race to another reads again. So slots are handed out
// one interval apart whoever asks, as a token bucket of one token would
// (burst 1). Each call costs a read and a replicated write of the entry
// (two JetStream round trips, more only when callers race for the same
// slot), and no state stays in a process between calls, so FC may freeze or
// drop an instance at any time.
//
// Slots are compared with each caller's own clock: callers whose clocks
// differ by d may come as close as 1/rate - d. Keep the machines' clocks
// synchronised (NTP keeps them within milliseconds, far below the
// interval of a rate of tens per second).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/queue"
)

// Limiter hands out slots of one shared rate. It is safe for concurrent use.
type Limiter struct {
	kv       jetstream.KeyValue
	key      string
	interval time.Duration
}

// New returns a Limiter of perSecond calls per second over the entry key of
// kv; every Limiter on the same entry shares the rate, whatever rate it was
// made with.
func New(kv jetstream.KeyValue, key string, perSecond float64) (*Limiter, error) {
	if kv == nil || key == "" {
		return nil, errors.New("ratelimit: a bucket and a key are required")
	}
	if !(perSecond > 0) || perSecond > 1e6 {
		return nil, fmt.Errorf("ratelimit: rate %v, want more than 0 and at most 1e6 per second", perSecond)
	}
	return &Limiter{kv: kv, key: key, interval: time.Duration(float64(time.Second) / perSecond)}, nil
}

// ErrTooLate is returned, without waiting, when the next free slot comes
// after the context's deadline.
var ErrTooLate = errors.New("ratelimit: the next slot comes after the deadline")

// Wait blocks until the caller's slot. It fails at once with ErrTooLate
// when that slot is after ctx's deadline, with ctx's error when ctx ends
// while waiting (the slot is lost, not given back), and with
// provider.ErrUnavailable when JetStream cannot be reached.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		slot, taken, err := l.take(ctx)
		if err != nil {
			return err
		}
		if !taken {
			// Another caller took the slot first: read again.
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		d := time.Until(slot)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

// opTimeout bounds each read and write of the entry: a request sent while
// the servers re-form their routes may get no answer, and the caller's
// context may have a deadline far away (or none).
const opTimeout = 5 * time.Second

// take reads the next free slot and writes the one after it. taken is false
// when another caller wrote first.
func (l *Limiter) take(ctx context.Context) (slot time.Time, taken bool, err error) {
	var rev uint64
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := l.kv.Get(octx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return time.Time{}, false, queue.Unavailable("read rate limit "+l.key, err)
	default:
		rev = e.Revision()
		if ns, perr := strconv.ParseInt(string(e.Value()), 10, 64); perr == nil {
			slot = time.Unix(0, ns)
		}
		// An entry that does not parse is overwritten: the rate restarts.
	}
	if now := time.Now(); slot.Before(now) {
		slot = now
	}
	if dl, ok := ctx.Deadline(); ok && slot.After(dl) {
		return time.Time{}, false, fmt.Errorf("%w (in %v)", ErrTooLate, time.Until(slot).Round(time.Millisecond))
	}
	next := []byte(strconv.FormatInt(slot.Add(l.interval).UnixNano(), 10))
	if rev == 0 {
		_, err = l.kv.Create(octx, l.key, next)
	} else {
		_, err = l.kv.Update(octx, l.key, next, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || wrongLastSequence(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, queue.Unavailable("take rate limit slot "+l.key, err)
	}
	return slot, true, nil
}

func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
