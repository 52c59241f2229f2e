package reports_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/buytest"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
)

const created = `{"secretNo":"13905710001","city":"杭州","partnerKey":"FC1","operatingTime":"2026-03-01 16:00:00","status":1,"vendor":1}`

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want bool
	}{
		{"a report", created, true},
		{"a report, pretty", "{\n  \"secretNo\": \"1\",\n  \"operatingTime\": \"x\"\n}", true},
		{"an array of reports", "[" + created + "," + created + "]", true},
		{"a bare order", `{"orderId":"o-1","poolKey":"FC1","city":"杭州","specId":2,"quantity":1}`, false},
		{"an order naming a number", `{"orderId":"o-1","secretNo":"1","operatingTime":"x"}`, false},
		{"a report without its time", `{"secretNo":"13905710001","status":1}`, false},
		{"our CloudEvent", `{"specversion":"1.0","type":"xnum.order.requested","data":{"orderId":"o-1"}}`, false},
		{"an empty array", `[]`, false},
		{"an array of orders", `[{"orderId":"o-1"}]`, false},
		{"not JSON", `drain`, false},
		{"nothing", ``, false},
	} {
		if got := reports.Is([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: Is = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	reps, raws, err := reports.Parse([]byte("[" + created + ",\n" + strings.Replace(created, `"status":1`, `"status":2`, 1) + "]"))
	if err != nil {
		t.Fatal(err)
	}
	want := reconcile.Report{SecretNo: "13905710001", City: "杭州", PartnerKey: "FC1", OperatingTime: "2026-03-01 16:00:00", Status: 1}
	if len(reps) != 2 || reps[0] != want || reps[1].Status != reconcile.ReportDeleted || string(raws[0]) != created {
		t.Fatalf("Parse = %+v, %q", reps, raws)
	}
	if reps, raws, err = reports.Parse([]byte("  " + created + "\n")); err != nil || len(reps) != 1 || string(raws[0]) != created {
		t.Fatalf("one report: %+v %q %v", reps, raws, err)
	}
	for _, bad := range []string{
		``, `[]`, `{`, `"a string"`,
		strings.Replace(created, `"status":1`, `"status":3`, 1),
		strings.Replace(created, `"13905710001"`, `""`, 1),
		strings.Replace(created, `2026-03-01 16:00:00`, `2026-03-01T16:00:00Z`, 1),
		"[" + created + `,{"secretNo":"1"}]`,
	} {
		if reps, _, err := reports.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) = %+v, want an error", bad, reps)
		}
	}
}

func TestMsgID(t *testing.T) {
	r := reconcile.Report{SecretNo: "13905710001", PartnerKey: "FC1", OperatingTime: "2026-03-01 16:00:00", Status: 1}
	del, again := r, r
	del.Status = 2
	again.OperatingTime = "2026-03-02 09:30:00"
	ids := map[string]bool{reports.MsgID(r): true, reports.MsgID(del): true, reports.MsgID(again): true}
	if len(ids) != 3 || reports.MsgID(r) != "report/FC1/13905710001/1/20260301160000" {
		t.Fatalf("ids %v", ids)
	}
}

// world is the buy world's JetStream, with xnum's objects and a publisher
// to the reports stream.
type world struct {
	q   *queue.Queue
	pub *queue.Publisher
}

func newWorld(t *testing.T) world {
	t.Helper()
	e := buytest.New(t)
	return world{q: e.Queue, pub: e.ReportsPub}
}

func ctx(t *testing.T) context.Context { return buytest.Ctx(t) }

func report(no string, status int, at string) string {
	b, _ := json.Marshal(reconcile.Report{SecretNo: no, City: "杭州", PartnerKey: "FC1", OperatingTime: at, Status: status})
	return string(b)
}

// stored reads the stream's time of its message seq.
func (w world) stored(t *testing.T, seq uint64) time.Time {
	t.Helper()
	m, err := w.q.Reports.GetMsg(ctx(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m.Time
}

// Reports are stored one message each, as they came, once however often
// they are delivered, and read back from a time on; what is not a report
// is refused at the door and, put there by someone else, skipped on the way
// back and counted.
func TestPublishAndSince(t *testing.T) {
	w := newWorld(t)
	c := ctx(t)
	a := report("13905710001", 1, "2026-03-01 16:00:00")
	b := report("13905710002", 1, "2026-03-01 16:00:05")
	d := report("13905710001", 2, "2026-03-01 16:10:00")
	if _, err := reports.Publish(c, w.pub, []byte(a)); err != nil {
		t.Fatal(err)
	}
	if reps, err := reports.Publish(c, w.pub, []byte("["+b+","+a+"]")); err != nil || len(reps) != 2 {
		t.Fatalf("an array: %+v %v", reps, err)
	}
	if _, err := reports.Publish(c, w.pub, []byte(`{"orderId":"o-1"}`)); err == nil {
		t.Fatal("an order was stored as a report")
	}
	// Someone else's message on the subject.
	if _, err := w.pub.Publish(c, events.SubjectNumberReports, "junk-1", []byte("not a report"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.Publish(c, w.pub, []byte(d)); err != nil {
		t.Fatal(err)
	}
	si, err := w.q.Reports.Info(c)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 4 {
		t.Fatalf("%d messages stored, want a, b, junk and d (a twice is once)", si.State.Msgs)
	}
	all, skipped, err := reports.Since(c, w.q.Reports, time.Time{})
	if err != nil || skipped != 1 || len(all) != 3 {
		t.Fatalf("Since(zero) = %+v, %d skipped, %v", all, skipped, err)
	}
	if all[0].SecretNo != "13905710001" || all[1].SecretNo != "13905710002" || all[2].Status != reconcile.ReportDeleted {
		t.Fatalf("order %+v", all)
	}
	from := w.stored(t, 2) // b
	later, skipped, err := reports.Since(c, w.q.Reports, from)
	if err != nil || skipped != 1 || len(later) != 2 || later[0].SecretNo != "13905710002" || later[1].Status != reconcile.ReportDeleted {
		t.Fatalf("Since(b) = %+v, %d skipped, %v", later, skipped, err)
	}
	none, _, err := reports.Since(c, w.q.Reports, time.Now().Add(time.Hour))
	if err != nil || len(none) != 0 {
		t.Fatalf("Since(later) = %+v %v", none, err)
	}
	// Each read deletes its consumer.
	names := w.q.Reports.ListConsumers(c)
	for ci := range names.Info() {
		t.Errorf("consumer %s left behind", ci.Name)
	}
}

// A publish that cannot reach JetStream is Unavailable, for the trigger to
// deliver the report again.
func TestPublishUnavailable(t *testing.T) {
	w := newWorld(t)
	pub := queue.NewPublisher(w.q.JS, queue.WithExpectStream("NO_SUCH_STREAM"), queue.WithPublishRetry(1, time.Millisecond))
	_, err := reports.Publish(ctx(t), pub, []byte(created))
	if provider.KindOf(err) != provider.ErrUnavailable {
		t.Fatalf("Publish = %v, want Unavailable", err)
	}
}

// A Feed stores what it is given after its delay; Close drops what has not
// been delivered yet, and what comes after.
func TestFeed(t *testing.T) {
	w := newWorld(t)
	f := reports.NewFeed(w.pub, 0)
	f.Add([]byte(created))
	testutil.WaitFor(t, "the feed's report", func() bool {
		reps, _, err := reports.Since(ctx(t), w.q.Reports, time.Time{})
		return err == nil && len(reps) == 1 && reps[0].SecretNo == "13905710001"
	})
	f.Close()

	slow := reports.NewFeed(w.pub, time.Hour)
	slow.Add([]byte(report("13905710009", 1, "2026-03-01 16:00:00")))
	slow.Close() // returns at once, dropping it
	slow.Add([]byte(report("13905710008", 1, "2026-03-01 16:00:00")))
	if si, _ := w.q.Reports.Info(ctx(t)); si.State.Msgs != 1 {
		t.Fatalf("%d reports stored, want 1", si.State.Msgs)
	}
}
