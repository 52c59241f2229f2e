package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/pkg/buy"
	"github.com/xnum-dev/xnum/pkg/config"
	"github.com/xnum-dev/xnum/pkg/ledger"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/queue"
	"github.com/xnum-dev/xnum/pkg/reconcile"
)

const ordersUsage = `Usage:
  xnum orders list [--status S[,S]] [--json]
  xnum orders show ID [--json]
  xnum orders reconcile ID --secret-no N      [--by NAME]   an in_doubt order: this number was bought
  xnum orders reconcile ID --reports FILE|-   [--by NAME]   ... settle from NumberManagementReport messages
  xnum orders reconcile ID --nothing-bought   [--by NAME] [--why TEXT]
  xnum orders reconcile ID --release          [--by NAME]   a failed order: give its numbers back (irreversible)

Every command takes --nats URL (default $NATS_URL). reconcile also reads the
Alibaba Cloud variables the buy function reads (ALIBABA_CLOUD_ACCESS_KEY_ID,
..., XNUM_ALIYUN_ENDPOINT): after settling, it buys the rest of the order.
xnum dev prints the values to export for its stack.
`

func runOrders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, ordersUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "list":
		return ordersList(ctx, args[1:], stdout, stderr)
	case "show":
		return ordersShow(ctx, args[1:], stdout, stderr)
	case "reconcile":
		return ordersReconcile(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, ordersUsage)
		return nil
	}
	fmt.Fprint(stderr, ordersUsage)
	return fmt.Errorf("unknown orders command %q", args[0])
}

// ordersFlags are the flags every orders command takes.
type ordersFlags struct {
	*flag.FlagSet
	nats *string
	json *bool
}

func newOrdersFlags(name string, stderr io.Writer) ordersFlags {
	fs := newFlagSet("orders "+name, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, ordersUsage) }
	return ordersFlags{
		FlagSet: fs,
		nats:    fs.String("nats", os.Getenv(config.NATSURL), "NATS server URL"),
		json:    fs.Bool("json", false, "print JSON"),
	}
}

// parse accepts the order id before or after the flags.
func (f ordersFlags) parse(args []string, wantID bool) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := f.Parse(args); err != nil {
		return "", err
	}
	if id == "" && f.NArg() > 0 {
		id = f.Arg(0)
	} else if f.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments %q", f.Args())
	}
	if wantID && id == "" {
		return "", errors.New("which order? give its id")
	}
	if !wantID && id != "" {
		return "", fmt.Errorf("unexpected argument %q", id)
	}
	return id, nil
}

func (f ordersFlags) connect() (*nats.Conn, jetstream.JetStream, error) {
	if *f.nats == "" {
		return nil, nil, fmt.Errorf("no NATS server: set %s or pass --nats", config.NATSURL)
	}
	nc, err := queue.Connect(*f.nats, nats.Name("xnum-orders"), nats.RetryOnFailedConnect(false), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, queue.Unavailable("connect to NATS", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// readLedger opens the ledger without creating anything.
func (f ordersFlags) readLedger(ctx context.Context) (*ledger.Ledger, func(), error) {
	nc, js, err := f.connect()
	if err != nil {
		return nil, nil, err
	}
	kv, err := js.KeyValue(ctx, queue.LedgerBucket)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("the order ledger (bucket %s): %w", queue.LedgerBucket, err)
	}
	return ledger.New(kv), nc.Close, nil
}

func ordersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("list", stderr)
	status := f.String("status", "", "only orders in these statuses: accepted, processing, completed, failed, in_doubt (comma-separated)")
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
			return fmt.Errorf("--status: unknown status %q", s)
		}
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
	// Newest first: what an operator looks for is usually recent.
	slices.SortFunc(orders, func(a, b *ledger.Order) int { return b.CreatedAt.Compare(a.CreatedAt) })
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

func printOrder(w io.Writer, o *ledger.Order) {
	r := o.Request
	fmt.Fprintf(w, "order     %s\nstatus    %s\nrequest   pool %s, city %s, specId %d, quantity %d", o.OrderID, o.Status, r.PoolKey, r.City, r.SpecID, r.Quantity)
	if r.Prefix != "" {
		fmt.Fprintf(w, ", prefix %s", r.Prefix)
	}
	fmt.Fprintf(w, "\ncreated   %s\nupdated   %s\n", o.CreatedAt.Format(time.RFC3339), o.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "numbers   %d of %d\n", len(o.Numbers), o.Quantity)
	for _, n := range o.Numbers {
		state := "published"
		if !n.Published {
			state = "not published yet"
		}
		if n.Released != nil {
			state += fmt.Sprintf(", released by %s at %s", n.Released.By, n.Released.At.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "  %s  attempt %d, bought %s, %s\n", n.SecretNo, n.Attempt, n.BoughtAt.Format(time.RFC3339), state)
	}
	if o.Attempt != nil {
		fmt.Fprintf(w, "in doubt  attempt %d, started %s by %s: it may have bought a number\n", o.Attempt.Seq, o.Attempt.StartedAt.Format(time.RFC3339), o.Attempt.Owner)
	}
	if o.Claim != nil {
		fmt.Fprintf(w, "claim     %s until %s\n", o.Claim.Owner, o.Claim.LeaseUntil.Format(time.RFC3339))
	}
	if o.Error != nil {
		fmt.Fprintf(w, "error     %s: %s\n", o.Error.Code, o.Error.Message)
	}
	for _, s := range o.Settlements {
		fmt.Fprintf(w, "settled   attempt %d %s by %s at %s: %s\n", s.Attempt, s.Outcome, s.By, s.SettledAt.Format(time.RFC3339), s.Evidence)
	}
}

func ordersReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newOrdersFlags("reconcile", stderr)
	secretNo := f.String("secret-no", "", "the number the attempt in doubt bought (checked with QuerySecretNoDetail)")
	reports := f.String("reports", "", "a file of NumberManagementReport messages (JSON array or lines; - for stdin)")
	nothing := f.Bool("nothing-bought", false, "your word that the attempt in doubt bought nothing")
	why := f.String("why", "", "with --nothing-bought: how you know")
	release := f.Bool("release", false, "give the numbers of a failed order back (ReleaseSecretNo; irreversible)")
	by := f.String("by", os.Getenv("USER"), "who settles (recorded in the ledger)")
	id, err := f.parse(args, true)
	if err != nil {
		return err
	}
	chosen := 0
	for _, set := range []bool{*secretNo != "", *reports != "", *nothing, *release} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("give exactly one of --secret-no, --reports, --nothing-bought or --release")
	}
	if *why != "" && !*nothing {
		return errors.New("--why goes with --nothing-bought")
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

	ac, err := config.LoadAliyun(os.LookupEnv)
	if err != nil {
		return err
	}
	client, err := aliyun.New(ac)
	if err != nil {
		return err
	}
	nc, js, err := f.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	bc, err := config.LoadBuy(os.LookupEnv)
	if err != nil {
		return err
	}
	fn, err := buy.New(ctx, js, client, buy.Config{QPS: bc.QPS})
	if err != nil {
		return err
	}
	rec := reconcile.New(fn.Ledger, client, fn.Worker)

	if *release {
		released, err := rec.Release(ctx, id, *by)
		for _, no := range released {
			fmt.Fprintf(stdout, "released %s\n", no)
		}
		if err != nil {
			return err
		}
		if len(released) == 0 {
			fmt.Fprintln(stdout, "nothing to release: every number of the order is released already")
		}
		return nil
	}
	var o *ledger.Order
	switch {
	case *secretNo != "":
		o, err = rec.Bought(ctx, id, *secretNo, *by)
	case *nothing:
		o, err = rec.NothingBought(ctx, id, *by, *why)
	default:
		o, err = rec.FromReports(ctx, id, reps, *by)
	}
	if o != nil {
		printOrder(stdout, o)
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
