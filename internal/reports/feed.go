package reports

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Feed delivers reports to JetStream after a delay, each on its own, as
// the cloud's MNS queue delivers them a while after the number changed: it
// is what makes an emulator's reports (dypls.WithReportHook) reach xnum in
// `xnum dev` and `xnum emulator --reports-nats`. A report that cannot be
// stored is logged and lost, as a real one may be. Build it with NewFeed.
type Feed struct {
	pub   Publisher
	delay time.Duration
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup
}

// FeedOption configures a Feed.
type FeedOption func(*Feed)

// WithFeedLogger sets the logger (default: discard).
func WithFeedLogger(l *slog.Logger) FeedOption { return func(f *Feed) { f.log = l } }

// NewFeed returns a Feed that stores each report delay after Add.
func NewFeed(pub Publisher, delay time.Duration, opts ...FeedOption) *Feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{pub: pub, delay: max(delay, 0), log: slog.New(slog.DiscardHandler), ctx: ctx, cancel: cancel}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Add schedules report — its JSON as the cloud sends it, or a value that
// marshals to it (an emulator's dypls.Report) — and returns at once: it may
// be called under an emulator's lock. After Close it drops report.
func (f *Feed) Add(report any) {
	body, ok := report.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(report); err != nil {
			f.log.Warn("number report not delivered: it does not marshal", "error", err.Error())
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-f.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
		defer cancel()
		reps, err := Publish(ctx, f.pub, body)
		if err != nil {
			f.log.WarnContext(ctx, "number report not delivered", "report", string(body), "error", err.Error())
			return
		}
		for _, r := range reps {
			f.log.DebugContext(ctx, "number report delivered", "secretNo", r.SecretNo, "status", r.Status, "operatingTime", r.OperatingTime)
		}
	}()
}

// Close drops the reports not yet delivered and waits for those under way.
func (f *Feed) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}
