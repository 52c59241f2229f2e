// Package reports carries Dyplsapi's NumberManagementReport messages — the
// cloud's word that a number was created in (status 1) or deleted from
// (status 2) a pool — to and from JetStream. They are published on
// events.SubjectNumberReports as the cloud sends them, one message per
// report with a Msg-Id made of its fields (MNS delivers at least once), kept
// in stream XNUM_REPORTS, and read back by time by whoever settles an
// attempt in doubt (internal/settle). Feed delivers an emulator's reports
// the same way, after a delay, as MNS would.
package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/reconcile"
)

// Is reports whether body is NumberManagementReport messages rather than an
// order: a JSON object (or an array whose first element is one) with a
// secretNo and an operatingTime, and no orderId. A queue that carries both
// is told apart by this, not by how it was configured.
func Is(body []byte) bool {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var all []json.RawMessage
		if json.Unmarshal(b, &all) != nil || len(all) == 0 {
			return false
		}
		b = all[0]
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(b, &keys) != nil {
		return false
	}
	_, no := keys["secretNo"]
	_, at := keys["operatingTime"]
	_, order := keys["orderId"]
	return no && at && !order
}

// Parse reads one message: a report object, or an array of them. Every
// report must have a number, status 1 or 2 and an operating time
// (reconcile.ParseReports' rules): evidence about money is not half read.
// It returns each report with its JSON as it came.
func Parse(body []byte) ([]reconcile.Report, [][]byte, error) {
	b := bytes.TrimSpace(body)
	var raws []json.RawMessage
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, nil, fmt.Errorf("reports: %w", err)
		}
	} else {
		raws = []json.RawMessage{b}
	}
	if len(raws) == 0 {
		return nil, nil, errors.New("reports: an empty array")
	}
	// reconcile.ParseReports reads JSON lines: one compact line per report.
	var lines bytes.Buffer
	for i, raw := range raws {
		if err := json.Compact(&lines, raw); err != nil {
			return nil, nil, fmt.Errorf("reports: message %d: %w", i+1, err)
		}
		lines.WriteByte('\n')
	}
	reps, err := reconcile.ParseReports(&lines)
	if err != nil {
		return nil, nil, err
	}
	if len(reps) != len(raws) {
		return nil, nil, fmt.Errorf("reports: %d messages read as %d reports", len(raws), len(reps))
	}
	out := make([][]byte, len(raws))
	for i, raw := range raws {
		out[i] = raw
	}
	return reps, out, nil
}

// MsgID is the Nats-Msg-Id of a report: the same report delivered twice is
// stored once (within the stream's duplicate window), while a number
// created, deleted and created again gives three.
func MsgID(r reconcile.Report) string {
	digits := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, r.OperatingTime)
	return "report/" + r.PartnerKey + "/" + r.SecretNo + "/" + strconv.Itoa(r.Status) + "/" + digits
}

// Publisher stores a message on a subject with a Msg-Id and waits for the
// stream's ack (*queue.Publisher, built for stream XNUM_REPORTS).
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header) (*jetstream.PubAck, error)
}

// Publish stores each report of body on events.SubjectNumberReports, as it
// came, and returns them. A body that is not reports is an error and
// nothing is stored; a failed publish is an error of kind
// provider.ErrUnavailable (the reports before it are stored: publishing
// them again is harmless).
func Publish(ctx context.Context, pub Publisher, body []byte) ([]reconcile.Report, error) {
	reps, raws, err := Parse(body)
	if err != nil {
		return nil, err
	}
	for i, r := range reps {
		if _, err := pub.Publish(ctx, events.SubjectNumberReports, MsgID(r), raws[i], nil); err != nil {
			return nil, fmt.Errorf("reports: store the report of %s: %w", r.SecretNo, err)
		}
	}
	return reps, nil
}
