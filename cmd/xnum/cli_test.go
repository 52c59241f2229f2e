package main

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Exit statuses: 0 done (or the help -h asked for), 1 failed, 2 a command
// line (or configuration) that cannot be run as given.
func TestExitCodes(t *testing.T) {
	t.Setenv(config.NATSURL, "")
	t.Setenv(config.NATSCreds, "")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"help"}, exitOK},
		{[]string{"-h"}, exitOK},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"dev", "-h"}, exitOK},
		{[]string{"dev", "--no-such-flag"}, exitUsage},
		{[]string{"dev", "--fault", "BuySecretNo"}, exitUsage},
		{[]string{"dev", "--log-level", "chatty"}, exitUsage},
		{[]string{"emulator", "-h"}, exitOK},
		{[]string{"emulator", "--fault", "BuySecretNo:cut=2"}, exitUsage},
		{[]string{"emulator", "--addr", "not-an-address"}, exitFailure},
		{[]string{"orders"}, exitUsage},
		{[]string{"orders", "-h"}, exitOK},
		{[]string{"orders", "frobnicate"}, exitUsage},
		{[]string{"orders", "list", "-h"}, exitOK},
		{[]string{"orders", "stats", "--help"}, exitOK},
		{[]string{"orders", "list"}, exitUsage}, // no NATS server named
		{[]string{"orders", "list", "--status", "lost"}, exitUsage},
		{[]string{"orders", "list", "--since", "yesterday"}, exitUsage},
		{[]string{"orders", "list", "--since", "-1h"}, exitUsage},
		{[]string{"orders", "list", "--limit", "-1"}, exitUsage},
		{[]string{"orders", "list", "--limit", "x"}, exitUsage},
		{[]string{"orders", "list", "extra"}, exitUsage},
		{[]string{"orders", "stats", "extra"}, exitUsage},
		{[]string{"orders", "show"}, exitUsage},
		{[]string{"orders", "reconcile", "o", "--nothing-bought", "--secret-no", "1"}, exitUsage},
		{[]string{"orders", "list", "--nats", "http://127.0.0.1:1"}, exitUsage},
		{[]string{"orders", "list", "--nats", "nats://127.0.0.1:1"}, exitFailure}, // nothing answers
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if got := exitCode(err); got != tc.want {
			t.Errorf("xnum %q: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
}

// Against a ledger: what fails is 1, what works 0.
func TestExitCodesOfOrders(t *testing.T) {
	s := newOpsStack(t, nil)
	s.order("ord-ok", 1)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"orders", "list"}, exitOK},
		{[]string{"orders", "stats"}, exitOK},
		{[]string{"orders", "show", "ord-ok"}, exitOK},
		{[]string{"orders", "show", "nope"}, exitFailure},
		{[]string{"orders", "reconcile", "ord-ok", "--nothing-bought"}, exitFailure},
		{[]string{"orders", "resume", "ord-ok"}, exitFailure},
	} {
		_, err := xnum(t, tc.args...)
		if got := exitCode(err); got != tc.want {
			t.Errorf("xnum %q: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
}

func listed(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := xnum(t, append([]string{"orders", "list", "--json"}, args...)...)
	var orders []struct{ OrderID string }
	if err != nil || json.Unmarshal([]byte(out), &orders) != nil {
		t.Fatalf("orders list --json %q: %v\n%s", args, err, out)
	}
	var ids []string
	for _, o := range orders {
		ids = append(ids, o.OrderID)
	}
	return ids
}

func TestOrdersListSinceAndLimit(t *testing.T) {
	s := newOpsStack(t, nil)
	s.order("ord-1", 1)
	time.Sleep(10 * time.Millisecond) // later creation times
	s.inDoubt("ord-2", 1, "BuySecretNo:cut=1")
	time.Sleep(10 * time.Millisecond)
	s.order("ord-3", 1)
	between := s.get("ord-2").CreatedAt.Format(time.RFC3339Nano)

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"ord-3", "ord-2", "ord-1"}},
		{[]string{"--limit", "2"}, []string{"ord-3", "ord-2"}},
		{[]string{"--limit", "0"}, []string{"ord-3", "ord-2", "ord-1"}},
		{[]string{"--since", "1h"}, []string{"ord-3", "ord-2", "ord-1"}},
		{[]string{"--since", between}, []string{"ord-3", "ord-2"}},
		{[]string{"--since", between, "--limit", "1"}, []string{"ord-3"}},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, nil},
		{[]string{"--since", time.Now().UTC().Format("2006-01-02"), "--status", "in_doubt"}, []string{"ord-2"}},
	} {
		if got := listed(t, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("orders list %q: %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestOrdersStats(t *testing.T) {
	s := newOpsStack(t, nil)
	out, err := xnum(t, "orders", "stats")
	if err != nil || !strings.Contains(out, "total       0") || !strings.Contains(out, "oldest open: none") {
		t.Fatalf("stats of an empty ledger: %v\n%s", err, out)
	}
	s.order("ord-1", 1)
	s.inDoubt("ord-2", 1, "BuySecretNo:cut=1")
	s.order("ord-3", 1)

	out, err = xnum(t, "orders", "stats")
	for _, want := range []string{"STATUS      ORDERS", "accepted    0", "in_doubt    1", "completed   2", "failed      0", "total       3",
		"oldest open: ord-2, in_doubt, accepted "} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("stats lacks %q: %v\n%s", want, err, out)
		}
	}
	out, err = xnum(t, "orders", "stats", "--json")
	var st struct {
		Total      int
		ByStatus   map[string]int
		OldestOpen *struct {
			OrderID    string
			Status     string
			AgeSeconds float64
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	if st.Total != 3 || st.ByStatus["completed"] != 2 || st.ByStatus["in_doubt"] != 1 || st.ByStatus["processing"] != 0 ||
		st.OldestOpen == nil || st.OldestOpen.OrderID != "ord-2" || st.OldestOpen.AgeSeconds < 0 {
		t.Errorf("stats --json: %s", out)
	}
}

// A long operation shows its progress: each number as it is bought, and
// how many of the order's quantity it makes.
func TestFollowShowsProgress(t *testing.T) {
	s := newOpsStack(t, nil)
	o := events.OrderRequested{OrderID: "ord-progress", PoolKey: testPool, City: "北京", SpecID: provider.SpecCarrier, Quantity: 3}
	if _, _, err := s.Ledger.CreateOrGet(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	out, err := xnum(t, "orders", "resume", "ord-progress", "--wait", "20s")
	if err != nil {
		t.Fatal(err)
	}
	bought := s.get("ord-progress").Numbers
	if len(bought) != 3 {
		t.Fatalf("bought %d", len(bought))
	}
	// The first numbers may be bought before the command first looks.
	if !strings.Contains(out, "bought    "+bought[2].SecretNo+" (3 of 3)\n") || strings.Contains(out, "(4 of 3)") {
		t.Errorf("progress lines:\n%s", out)
	}
}
