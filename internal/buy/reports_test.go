package buy

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/trigger"
)

type storeFunc func(subject, msgID string, data []byte) error

func (f storeFunc) Publish(_ context.Context, subject, msgID string, data []byte, _ nats.Header) (*jetstream.PubAck, error) {
	if err := f(subject, msgID, data); err != nil {
		return nil, err
	}
	return &jetstream.PubAck{}, nil
}

// A report that cannot be stored now fails its message, for the trigger to
// deliver it again; one that is no valid report is dropped, not failed. A
// settlement pass follows only what was stored (here nothing).
func TestReportIntakeFailures(t *testing.T) {
	var ids []string
	down := storeFunc(func(_, msgID string, _ []byte) error {
		ids = append(ids, msgID)
		return queue.Unavailable("publish", nats.ErrNoResponders)
	})
	r := reportIntake{pub: down, log: slog.New(slog.DiscardHandler)} // no settler: a pass would panic
	errs := r.HandleEvents(context.Background(), []trigger.Message{
		{Source: trigger.SourceMNS, Body: []byte(`{"secretNo":"13905700001","city":"杭州","partnerKey":"FC1","operatingTime":"2026-03-01 16:00:00","status":1}`)},
		{Source: trigger.SourceMNS, Body: []byte(`{"secretNo":"13905700002","operatingTime":"yesterday","status":1}`)},
	})
	if errs[0] == nil || errs[1] != nil {
		t.Fatalf("errors %v: want the unstored report failed, the invalid one dropped", errs)
	}
	if len(ids) != 1 || ids[0] != "report/FC1/13905700001/1/20260301160000" {
		t.Fatalf("stored under %v", ids)
	}
}
