package reports

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
)

// Stream is the reports stream (queue.Queue.Reports).
type Stream interface {
	CreateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error)
	DeleteConsumer(ctx context.Context, name string) error
}

// ReadBack is how much earlier than an attempt began its reports are read
// back: more than reconcile's slack, for the cloud's clock, NATS's (which
// stamps the stored messages) and ours.
const ReadBack = time.Minute

// fetchWait bounds the wait for one batch of messages the server said it
// holds.
const fetchWait = 5 * time.Second

// Since reads back the reports the stream stored at or after t (by the
// stream's clock), oldest first, with how many messages were not reports
// (published there by someone else; they are skipped, and the caller says
// so). It reads what was stored when it began, through a consumer of its
// own that it deletes afterwards.
func Since(ctx context.Context, s Stream, t time.Time) (reps []reconcile.Report, skipped int, err error) {
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "xnum: reports read back for a settlement",
		FilterSubject:     events.SubjectNumberReports,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &t,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute, // gone even if the delete below is lost
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, 0, queue.Unavailable("read the reports", err)
	}
	info := c.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.DeleteConsumer(dctx, info.Name)
		cancel()
	}()
	for want := int(info.NumPending); want > 0; {
		batch, err := c.Fetch(min(want, 256), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return nil, 0, queue.Unavailable("read the reports", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			rs, _, perr := Parse(m.Data())
			if perr != nil {
				skipped++
				continue
			}
			reps = append(reps, rs...)
		}
		if err := batch.Error(); err != nil {
			return nil, 0, queue.Unavailable("read the reports", err)
		}
		if got == 0 {
			break // aged out of the stream meanwhile
		}
		want -= got
	}
	return reps, skipped, nil
}
