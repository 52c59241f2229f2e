package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xnum-dev/xnum/internal/ledger"
)

// statuses are the order statuses in the order stats prints them: the
// open ones first.
var statuses = []ledger.Status{ledger.StatusAccepted, ledger.StatusProcessing, ledger.StatusInDoubt, ledger.StatusCompleted, ledger.StatusFailed}

// stats is what `xnum orders stats --json` prints.
type stats struct {
	Total      int                   `json:"total"`
	ByStatus   map[ledger.Status]int `json:"byStatus"`
	OldestOpen *oldestOpen           `json:"oldestOpen"`
}

type oldestOpen struct {
	OrderID    string        `json:"orderId"`
	Status     ledger.Status `json:"status"`
	CreatedAt  time.Time     `json:"createdAt"`
	AgeSeconds float64       `json:"ageSeconds"`
}

func ordersStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("stats", stderr)
	if _, err := f.parse(args, false); err != nil {
		return err
	}
	l, done, err := f.readLedger(ctx)
	if err != nil {
		return err
	}
	defer done()
	orders, err := l.List(ctx)
	if err != nil {
		return err
	}
	sum := ledger.Summarize(orders)
	st := stats{Total: sum.Total, ByStatus: map[ledger.Status]int{}}
	for _, s := range statuses {
		st.ByStatus[s] = sum.ByStatus[s]
	}
	if o := sum.OldestOpen; o != nil {
		st.OldestOpen = &oldestOpen{OrderID: o.OrderID, Status: o.Status, CreatedAt: o.CreatedAt,
			AgeSeconds: max(0, time.Since(o.CreatedAt)).Seconds()}
	}
	if *f.json {
		return writeJSON(stdout, st)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tORDERS")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%d\n", s, st.ByStatus[s])
	}
	fmt.Fprintf(tw, "total\t%d\n", st.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if o := st.OldestOpen; o != nil {
		age := time.Duration(o.AgeSeconds * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(stdout, "oldest open: %s, %s, accepted %s (%s ago)\n", o.OrderID, o.Status, o.CreatedAt.Format(time.RFC3339), age)
	} else {
		fmt.Fprintln(stdout, "oldest open: none, every order has ended")
	}
	return nil
}

// parseSince reads --since: "" (no bound), a duration back from now (24h,
// 90m), a date (2006-01-02, midnight UTC) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("--since %s: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--since %q: want a duration (24h), a date (2006-01-02) or an RFC 3339 time", s)
}
