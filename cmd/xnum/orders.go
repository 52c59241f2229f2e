package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/redrive"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
)

const ordersUsage = `Usage:
  xnum orders list [--status S[,S]] [--since DURATION|TIME] [--limit N] [--json]
  xnum orders stats [--json]
  xnum orders show ID [--json]
  xnum orders reconcile ID EVIDENCE [--by NAME] [--wait DURATION]
  xnum orders reconcile ID --release [--by NAME]
  xnum orders resume ID [--wait DURATION]

list shows the ledger's orders, newest first, read in one pass; --status
keeps those in the given statuses (accepted, processing, completed, failed,
in_doubt), --since those created in the last DURATION (24h) or since TIME
(2006-01-02 or RFC 3339), --limit the newest N of them.
stats counts the orders by status and names the oldest open one (accepted,
processing or in doubt) and its age.
show prints one order in full: request, numbers (and excess numbers),
the attempt in doubt, error, settlements (by "reports" when the cloud's
number reports settled it by themselves, by "worker" when its own late
answer did), why the reports did not settle it, claim, deliveries.

reconcile settles the attempt in doubt of an in_doubt order from EVIDENCE,
exactly one of:
  --secret-no N       this number was bought (checked with QuerySecretNoDetail:
                      in the order's pool and city, of its type and prefix,
                      bought while the attempt could have bought it, held by no
                      order and not what another open attempt may have bought)
  --reports FILE|-    the cloud's NumberManagementReport messages (JSON array or
                      JSON lines of secretNo, city, partnerKey, operatingTime,
                      status): the one such number created in the pool
  --stored-reports    the same, from the reports stored on JetStream
                      (xnum.reports.numbers) since the attempt began: for a
                      report that came after the workers gave up waiting
  --nothing-bought    your word that nothing was bought [--why TEXT]; taken
                      only once the attempt's answer can no longer arrive
Then the order is published again for the buy workers, which buy the rest or
end it; this command never buys. --wait D follows the order for up to D,
printing each number as it is bought.

--release, a step of its own, gives back (ReleaseSecretNo, irreversible) the
numbers of a failed order, and the excess numbers of an order that ended,
recording each in the ledger. Nothing is released without it.
--by NAME (default $USER) is recorded as who settled or released.

resume publishes an open order (accepted or processing) again for the buy
workers, when nothing works on it; --wait as for reconcile.

Every command takes --nats URL (default $NATS_URL; NATS_CREDS is read too).
reconcile also reads the Alibaba Cloud variables the buy function reads
(ALIBABA_CLOUD_REGION_ID, XNUM_ALIYUN_ENDPOINT, ...); its key is
ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN when set, else what
Alibaba's default credential chain finds: the aliyun CLI's profile (aliyun
configure), ~/.alibabacloud/credentials, OIDC, an ECS instance's RAM role.
Logs go to stderr at XNUM_LOG_LEVEL (default warn).
Against a local stack: xnum dev prints the variables to export.
`

func runOrders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "orders command", ordersUsage, []command{
		{"list", ordersList},
		{"stats", ordersStats},
		{"show", ordersShow},
		{"reconcile", ordersReconcile},
		{"resume", ordersResume},
	}, args, stdout, stderr)
}

// natsFlags are the flags of a command that talks to NATS.
type natsFlags struct {
	*flag.FlagSet
	nats *string
}

func newNATSFlags(name, usage string, stderr io.Writer) natsFlags {
	fs := newFlagSet(name, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return natsFlags{FlagSet: fs, nats: fs.String("nats", "", "NATS server URL (default $"+config.NATSURL+")")}
}

// ordersFlags are the flags every orders command takes.
type ordersFlags struct {
	natsFlags
	json *bool
}

func newOrdersFlags(name string, stderr io.Writer) ordersFlags {
	f := newNATSFlags("orders "+name, ordersUsage, stderr)
	return ordersFlags{natsFlags: f, json: f.Bool("json", false, "print JSON")}
}

// parse accepts the order id before or after the flags.
func (f ordersFlags) parse(args []string, wantID bool) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(f.FlagSet, args); err != nil {
		return "", err
	}
	if id == "" && f.NArg() > 0 {
		id = f.Arg(0)
		if f.NArg() > 1 {
			return "", usagef("unexpected arguments %q", f.Args()[1:])
		}
	} else if f.NArg() > 0 {
		return "", usagef("unexpected arguments %q", f.Args())
	}
	if wantID && id == "" {
		return "", usagef("which order? give its id")
	}
	if !wantID && id != "" {
		return "", usagef("unexpected argument %q", id)
	}
	return id, nil
}

// lookup is the environment, with --nats in place of NATS_URL.
func (f natsFlags) lookup(key string) (string, bool) {
	if key == config.NATSURL && *f.nats != "" {
		return *f.nats, true
	}
	return os.LookupEnv(key)
}

func (f natsFlags) connect(client string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := config.LoadNATS(f.lookup)
	if err != nil {
		return nil, nil, err
	}
	if !nc.Enabled() {
		return nil, nil, usagef("no NATS server: set %s or pass --nats", config.NATSURL)
	}
	opts := append(nc.Options(), nats.Name(client), nats.RetryOnFailedConnect(false), nats.Timeout(5*time.Second))
	conn, err := queue.Connect(nc.URL, opts...)
	if err != nil {
		return nil, nil, queue.Unavailable("connect to NATS", err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, js, nil
}

// openLedger opens the ledger without creating anything.
func (f ordersFlags) openLedger(ctx context.Context) (*ledger.Ledger, jetstream.JetStream, func(), error) {
	nc, js, err := f.connect("xnum-orders")
	if err != nil {
		return nil, nil, nil, err
	}
	kv, err := js.KeyValue(ctx, queue.LedgerBucket)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("the order ledger (bucket %s): %w", queue.LedgerBucket, err)
	}
	return ledger.New(kv), js, nc.Close, nil
}

// readLedger is openLedger for reading.
func (f ordersFlags) readLedger(ctx context.Context) (*ledger.Ledger, func(), error) {
	l, _, done, err := f.openLedger(ctx)
	return l, done, err
}

func ordersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("list", stderr)
	status := f.String("status", "", "only orders in these statuses: accepted, processing, completed, failed, in_doubt (comma-separated)")
	sinceFlag := f.String("since", "", "only orders created in the last DURATION (e.g. 24h) or since TIME (2006-01-02 or RFC 3339)")
	limit := f.Int("limit", 0, "at most the newest N orders (0: all)")
	if _, err := f.parse(args, false); err != nil {
		return err
	}
	var statuses []ledger.Status
	for s := range strings.SplitSeq(*status, ",") {
		switch st := ledger.Status(strings.TrimSpace(s)); st {
		case "":
		case ledger.StatusAccepted, ledger.StatusProcessing, ledger.StatusCompleted, ledger.StatusFailed, ledger.StatusInDoubt:
			statuses = append(statuses, st)
		default:
			return usagef("--status: unknown status %q", s)
		}
	}
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit must be 0 (all) or more, not %d", *limit)
	}
	l, done, err := f.readLedger(ctx)
	if err != nil {
		return err
	}
	defer done()
	orders, err := l.List(ctx, statuses...)
	if err != nil {
		return err
	}
	orders = slices.DeleteFunc(orders, func(o *ledger.Order) bool { return o.CreatedAt.Before(since) })
	// Newest first: what an operator looks for is usually recent.
	slices.SortFunc(orders, func(a, b *ledger.Order) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if *limit > 0 && len(orders) > *limit {
		orders = orders[:*limit]
	}
	if *f.json {
		return writeJSON(stdout, orders)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSTATUS\tQTY\tBOUGHT\tCREATED\tUPDATED\tERROR")
	for _, o := range orders {
		errCode := ""
		if o.Error != nil {
			errCode = o.Error.Code
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", o.OrderID, o.Status, o.Quantity, len(o.Numbers),
			o.CreatedAt.Format(time.RFC3339), o.UpdatedAt.Format(time.RFC3339), errCode)
	}
	return tw.Flush()
}

func ordersShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("show", stderr)
	id, err := f.parse(args, true)
	if err != nil {
		return err
	}
	l, done, err := f.readLedger(ctx)
	if err != nil {
		return err
	}
	defer done()
	o, err := l.Get(ctx, id)
	if err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, o)
	}
	printOrder(stdout, o)
	return nil
}

// numberState says whether n's event is out (published) and whether it was
// released.
func numberState(n ledger.Number, published string) string {
	state := published
	if !n.Published {
		state = "not published yet"
	}
	if r := n.Released; r != nil {
		state += fmt.Sprintf(", released by %s at %s (%s)", r.By, r.At.Format(time.RFC3339), r.Evidence)
	}
	return state
}

func printOrder(w io.Writer, o *ledger.Order) {
	r := o.Request
	fmt.Fprintf(w, "order     %s\nstatus    %s\nrequest   pool %s, city %s, specId %d, quantity %d", o.OrderID, o.Status, r.PoolKey, r.City, r.SpecID, r.Quantity)
	if r.Prefix != "" {
		fmt.Fprintf(w, ", prefix %s", r.Prefix)
	}
	if r.DisplayPool {
		fmt.Fprint(w, ", displayPool")
	}
	fmt.Fprintf(w, "\ncreated   %s\nupdated   %s\n", o.CreatedAt.Format(time.RFC3339), o.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "numbers   %d of %d\n", len(o.Numbers), o.Quantity)
	for _, n := range o.Numbers {
		fmt.Fprintf(w, "  %s  attempt %d, bought %s, %s\n", n.SecretNo, n.Attempt, n.BoughtAt.Format(time.RFC3339), numberState(n, "published"))
	}
	for _, n := range o.Excess {
		fmt.Fprintf(w, "excess    %s  attempt %d, bought %s past the quantity, %s\n", n.SecretNo, n.Attempt, n.BoughtAt.Format(time.RFC3339),
			numberState(n, "published as number.excess"))
	}
	if a := o.Attempt; a != nil {
		what := "in flight"
		if o.Status == ledger.StatusInDoubt {
			what = "in doubt"
		}
		fmt.Fprintf(w, "%-9s attempt %d, started %s by %s, answer by %s, recorded by %s: it may have bought a number\n", what, a.Seq,
			a.StartedAt.Format(time.RFC3339), a.Owner, a.AnsweredBy().Format(time.RFC3339), a.RecordedBy().Format(time.RFC3339))
	}
	if o.Claim != nil {
		fmt.Fprintf(w, "claim     %s until %s\n", o.Claim.Owner, o.Claim.LeaseUntil.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "driven    %d deliveries claimed it", o.Deliveries)
	if o.Redriven > 0 {
		fmt.Fprintf(w, ", published again %d times (last %s)", o.Redriven, o.RedrivenAt.Format(time.RFC3339))
	}
	if !o.RequestPublished {
		fmt.Fprint(w, ", its message not published yet")
	}
	fmt.Fprintln(w)
	if o.Error != nil {
		fmt.Fprintf(w, "error     %s: %s\n", o.Error.Code, o.Error.Message)
	}
	if o.LastError != nil && o.Error == nil {
		fmt.Fprintf(w, "last try  %s: %s\n", o.LastError.Code, o.LastError.Message)
	}
	if o.Status.Stopped() {
		state := "published"
		if !o.EventPublished {
			state = "not published yet"
		}
		fmt.Fprintf(w, "event     order.%s %s\n", o.Status, state)
	}
	for _, s := range o.Settlements {
		fmt.Fprintf(w, "settled   attempt %d %s by %s at %s: %s\n", s.Attempt, s.Outcome, s.By, s.SettledAt.Format(time.RFC3339), s.Evidence)
	}
	if u := o.Unsettled; u != nil {
		fmt.Fprintf(w, "unsettled attempt %d, at %s: %s\n", u.Attempt, u.At.Format(time.RFC3339), u.Reason)
	}
}

func ordersReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("reconcile", stderr)
	secretNo := f.String("secret-no", "", "the number the attempt in doubt bought (checked with QuerySecretNoDetail)")
	reports := f.String("reports", "", "a file of NumberManagementReport messages (JSON array or lines; - for stdin)")
	stored := f.Bool("stored-reports", false, "the NumberManagementReport messages stored on JetStream since the attempt began")
	nothing := f.Bool("nothing-bought", false, "your word that the attempt in doubt bought nothing")
	why := f.String("why", "", "with --nothing-bought: how you know")
	release := f.Bool("release", false, "give back the numbers of a failed order, or an ended order's excess (ReleaseSecretNo; irreversible)")
	by := f.String("by", os.Getenv("USER"), "who settles (recorded in the ledger)")
	wait := f.Duration("wait", 0, "follow the order for up to this long after settling it")
	id, err := f.parse(args, true)
	if err != nil {
		return err
	}
	if *f.json {
		return usagef("--json: reconcile prints the order as show does; use show --json afterwards")
	}
	evidence := 0
	for _, set := range []bool{*secretNo != "", *reports != "", *stored, *nothing} {
		if set {
			evidence++
		}
	}
	switch {
	case evidence > 1:
		return usagef("give one kind of evidence: --secret-no, --reports, --stored-reports or --nothing-bought")
	case evidence == 1 && *release:
		return usagef("--release is a step of its own: settle the order first, then release once it has ended")
	case evidence == 0 && !*release:
		return usagef("give exactly one of --secret-no, --reports, --stored-reports or --nothing-bought (or --release for an ended order)")
	case *why != "" && !*nothing:
		return usagef("--why goes with --nothing-bought")
	case *wait != 0 && *release:
		return usagef("--wait goes with a settlement, not --release")
	case *by == "":
		return usagef("--by: say who you are ($USER is not set)")
	}
	var reps []reconcile.Report
	if *reports != "" {
		in := io.Reader(os.Stdin)
		if *reports != "-" {
			file, err := os.Open(*reports)
			if err != nil {
				return err
			}
			defer file.Close()
			in = file
		}
		if reps, err = reconcile.ParseReports(in); err != nil {
			return err
		}
	}

	ops, err := f.operations(ctx, stderr, true)
	if err != nil {
		return err
	}
	defer ops.close()

	if *release {
		released, err := ops.rec.Release(ctx, id, *by)
		for _, no := range released {
			fmt.Fprintf(stdout, "released  %s\n", no)
		}
		if err != nil {
			return err
		}
		if len(released) == 0 {
			fmt.Fprintln(stdout, "nothing to release: every number it may give back is released already")
		}
		if o, err := ops.ledger.Get(ctx, id); err == nil {
			printOrder(stdout, o)
		}
		return nil
	}

	var o *ledger.Order
	switch {
	case *secretNo != "":
		o, err = ops.rec.Bought(ctx, id, *secretNo, *by)
	case *nothing:
		o, err = ops.rec.NothingBought(ctx, id, *by, *why)
	case *stored:
		if reps, err = ops.storedReports(ctx, id); err != nil {
			return err
		}
		o, err = ops.rec.FromReports(ctx, id, reps, *by)
	default:
		o, err = ops.rec.FromReports(ctx, id, reps, *by)
	}
	if o == nil {
		return err
	}
	if err != nil {
		// Settled, but not published again: say so, then fail.
		printOrder(stdout, o)
		return err
	}
	settled := o.Settlements[len(o.Settlements)-1].Attempt
	fmt.Fprintf(stdout, "settled   attempt %d of %s; the order is published again for the buy workers\n", settled, id)
	return follow(ctx, ops.ledger, o, settled, *wait, stdout)
}

func ordersResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("resume", stderr)
	wait := f.Duration("wait", 0, "follow the order for up to this long")
	id, err := f.parse(args, true)
	if err != nil {
		return err
	}
	if *f.json {
		return usagef("--json: resume prints the order as show does; use show --json afterwards")
	}
	ops, err := f.operations(ctx, stderr, false)
	if err != nil {
		return err
	}
	defer ops.close()
	before, err := ops.ledger.Get(ctx, id)
	if err != nil {
		return err
	}
	o, err := ops.rec.Resume(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resumed   %s is published again for the buy workers (message %d)\n", id, o.MessageSeq)
	return follow(ctx, ops.ledger, o, before.Attempts, *wait, stdout)
}

// follow prints the order as it goes on for up to wait: each number its
// attempts after afterAttempt buy, as it is bought (and how many of the quantity that makes), then the order; or,
// when it has not stopped by then, the order as it is and what comes next.
func follow(ctx context.Context, l *ledger.Ledger, o *ledger.Order, afterAttempt int, wait time.Duration, w io.Writer) error {
	deadline := time.Now().Add(wait)
	printed := map[string]bool{}
	show := func(o *ledger.Order) {
		for i, n := range o.Numbers {
			if n.Attempt > afterAttempt && !printed[n.SecretNo] {
				printed[n.SecretNo] = true
				fmt.Fprintf(w, "bought    %s (%d of %d)\n", n.SecretNo, i+1, o.Quantity)
			}
		}
	}
	for !o.Status.Stopped() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		now, err := l.Get(ctx, o.OrderID)
		if err != nil {
			return err
		}
		show(now)
		o = now
	}
	show(o)
	printOrder(w, o)
	hint(w, o)
	return nil
}

// hint says what the operator may do next with the order.
func hint(w io.Writer, o *ledger.Order) {
	switch o.Status {
	case ledger.StatusInDoubt:
		if o.Unsettled != nil && o.Attempt != nil && o.Unsettled.Attempt == o.Attempt.Seq {
			fmt.Fprintln(w, "next      the cloud's reports did not settle it: reconcile it with evidence")
		} else {
			fmt.Fprintln(w, "next      the order is in doubt: the workers settle it when the cloud's report of its number comes, or reconcile it with evidence")
		}
	case ledger.StatusFailed, ledger.StatusCompleted:
		kept := 0
		for _, n := range o.Excess {
			if n.Released == nil {
				kept++
			}
		}
		if o.Status == ledger.StatusFailed {
			for _, n := range o.Numbers {
				if n.Released == nil {
					kept++
				}
			}
		}
		if kept > 0 {
			fmt.Fprintf(w, "next      the order %s holding %d numbers it may give back: xnum orders reconcile %s --release gives them back\n", o.Status, kept, o.OrderID)
		}
	case ledger.StatusAccepted, ledger.StatusProcessing:
		fmt.Fprintf(w, "next      a buy worker continues it (its consumer, or the next timer drain on FC); xnum orders show %s follows it\n", o.OrderID)
	}
}

// operations are what reconcile and resume work with: the ledger and the
// stream as they are (nothing is created: the functions and xnum setup do
// that), a publisher, and for reconcile the provider.
type operations struct {
	ledger *ledger.Ledger
	js     jetstream.JetStream
	rec    *reconcile.Reconciler
	log    *slog.Logger
	close  func()
}

// storedReports reads the reports stored on JetStream since the attempt in
// doubt of order id began (less reports.ReadBack; stream XNUM_REPORTS, as
// it is: nothing is created).
func (ops *operations) storedReports(ctx context.Context, id string) ([]reconcile.Report, error) {
	o, err := ops.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Status != ledger.StatusInDoubt || o.Attempt == nil {
		return nil, &ledger.StateError{Op: "reconcile", Status: o.Status, Reason: "only an order in doubt is reconciled"}
	}
	stream, err := ops.js.Stream(ctx, queue.ReportsStreamName)
	if err != nil {
		return nil, fmt.Errorf("the reports stream %s: %w", queue.ReportsStreamName, err)
	}
	reps, skipped, err := reports.Since(ctx, stream, o.Attempt.StartedAt.Add(-reports.ReadBack))
	if skipped > 0 {
		ops.log.WarnContext(ctx, "messages on the reports subject that are not NumberManagementReports were skipped", "skipped", skipped)
	}
	return reps, err
}

func (f ordersFlags) operations(ctx context.Context, stderr io.Writer, withProvider bool) (*operations, error) {
	level := slog.LevelWarn
	if _, set := f.lookup(config.LogLevel); set {
		l, err := config.LoadLevel(f.lookup)
		if err != nil {
			return nil, err
		}
		level = l
	}
	logger := logging.New(stderr, logging.Options{Level: level, Function: "xnum-orders"})
	var p reconcile.Provider
	if withProvider {
		ac, err := aliyunConfig(f.lookup, logger)
		if err != nil {
			return nil, err
		}
		ac.Logger = logger
		if p, err = aliyun.New(ac); err != nil {
			return nil, err
		}
	}
	l, js, done, err := f.openLedger(ctx)
	if err != nil {
		return nil, err
	}
	rd := redrive.New(l, queue.NewPublisher(js), redrive.WithSource(events.SourceOperator), redrive.WithLogger(logger))
	return &operations{ledger: l, js: js, rec: reconcile.New(l, p, rd), log: logger, close: done}, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
