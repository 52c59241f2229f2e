package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/devstack"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the functions' HTTP routes")
	natsAddr := fs.String("nats", "127.0.0.1:4222", "address of the embedded NATS server")
	emuAddr := fs.String("emulator", "127.0.0.1:0", "address of the two-cloud emulator (0: a free port)")
	data := fs.String("data", "", "keep JetStream's store (orders, ledger) in this directory, every write synced to disk before it is acknowledged; default: a temporary one")
	qps := fs.Float64("buy-qps", buy.DefaultQPS, "BuySecretNo calls per second the worker may make (0: no limit)")
	onFC := fs.Bool("fc", false, "run the buy worker as on FC: a function of its own that the intake wakes up through the emulator's FC, and a timer drains every minute, instead of a consumer")
	reportsDelay := fs.Duration("reports-delay", time.Second, "how long after a sale or release the emulator's NumberManagementReport reaches NATS\n(xnum.reports.numbers), as MNS would deliver it; negative: never (see orders stay in doubt)")
	reportsWait := fs.Duration("reports-wait", settle.DefaultWait, "how long the worker waits for a report before it leaves an attempt in doubt to an operator")
	level := fs.String("log-level", "info", "debug, info, warn or error; logs go to stderr as JSON")
	faults := newFaultFlags()
	fs.Var(faults, "fault", "inject an emulator fault, Action:key=value[,...] (repeatable; see xnum emulator -h)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lvl, err := logging.ParseLevel(*level)
	if err != nil {
		return usagef("--log-level: %v", err)
	}
	if *reportsWait <= 0 {
		return fmt.Errorf("--reports-wait %v: must be positive", *reportsWait)
	}
	cfg := devstack.Config{
		HTTPAddr: *httpAddr, NATSAddr: *natsAddr, EmulatorAddr: *emuAddr, DataDir: *data,
		BuyQPS:       *qps,
		FC:           *onFC,
		Markers:      stderr,
		ReportsDelay: *reportsDelay,
		ReportsWait:  *reportsWait,
		Emulator:     []emulator.Option{emulator.WithFaults(faults.set)},
		Logger:       logging.New(stderr, logging.Options{Level: lvl, Function: "xnum-dev"}),
	}
	return devstack.Run(ctx, cfg, func(s devstack.Stack) { printBanner(stdout, s, *reportsDelay) })
}

func printBanner(w io.Writer, s devstack.Stack, reportsDelay time.Duration) {
	store := s.DataDir
	if store == "" {
		store = "a temporary directory, removed at exit (--data DIR keeps it)"
	}
	reports := fmt.Sprintf("the emulator's number reports reach xnum.reports.numbers %v after each sale and release:\n"+
		"             a lost answer (try --fault BuySecretNo:cut=0.1) settles itself", reportsDelay)
	if reportsDelay < 0 {
		reports = "the emulator sends no number reports (--reports-delay): a lost answer stays in doubt"
	}
	remain := s.HTTPURL + "/remain?" + url.Values{"city": {"杭州"}, "specId": {"1"}}.Encode()
	list := s.HTTPURL + "/remain?" + url.Values{"city": {"全国列表"}, "specId": {"2"}}.Encode()
	fmt.Fprintf(w, `xnum dev is running (Ctrl-C stops it)
  functions  %[1]s   remain, pools, buy (orders)
  nats       %[2]s   JetStream store: %[3]s
  emulator   %[4]s   Dyplsapi + VMS + FC, AccessKeyId %[5]s, pool key FC100000000000001
  reports    %[6]s
  operate    %[1]s/metrics (Prometheus), %[1]s/healthz, %[1]s/readyz
`, s.HTTPURL, s.NATSURL, store, s.EmulatorURL, emulator.DefaultAccessKeyID, reports)
	if s.WorkerURL != "" {
		fmt.Fprintf(w, "  worker     %s   %s, as on FC: woken through the emulator's FC for each order, drained every minute\n",
			s.WorkerURL, devstack.WorkerFunction)
	}
	fmt.Fprintf(w, `
Try:
  curl '%[6]s'
  curl '%[7]s'
  curl '%[1]s/pools?limit=3'
  curl '%[1]s/pools/%[9]s/numbers?limit=2'
  curl -i -X POST %[1]s/orders -H 'Idempotency-Key: demo-1' -d '{"poolKey":"FC100000000000001","city":"杭州","specId":2,"quantity":2}'
  curl '%[1]s/orders/demo-1'
With the nats CLI (github.com/nats-io/natscli):
  nats --server %[2]s req xnum.remain '{"city":"全国","specId":1}'
  nats --server %[2]s pub xnum.orders.requested '{"orderId":"demo-2","poolKey":"FC100000000000001","city":"北京","specId":2,"quantity":1}' -H Nats-Msg-Id:demo-2

Operate orders from another shell:
  export NATS_URL=%[2]s XNUM_ALIYUN_ENDPOINT=%[4]s ALIBABA_CLOUD_ACCESS_KEY_ID=%[5]s ALIBABA_CLOUD_ACCESS_KEY_SECRET=%[8]s
  go run ./cmd/xnum orders list
`, s.HTTPURL, s.NATSURL, store, s.EmulatorURL, emulator.DefaultAccessKeyID, remain, list, emulator.DefaultAccessKeySecret, s.Emulator.VMS().Pools()[0].No)
}
