package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "address to serve both clouds on")
	id := fs.String("access-key-id", emulator.DefaultAccessKeyID, "the AccessKeyId both clouds accept")
	secret := fs.String("access-key-secret", emulator.DefaultAccessKeySecret, "its secret")
	token := fs.String("security-token", "", "make the key temporary (STS): requests must carry this token")
	verbose := fs.Bool("v", false, "log every request")
	reportsNATS := fs.String("reports-nats", "", "publish the Dyplsapi emulator's NumberManagementReport messages to this NATS server\n(xnum.reports.numbers, stream XNUM_REPORTS, which the buy function creates), as MNS delivers the cloud's")
	reportsDelay := fs.Duration("reports-delay", time.Second, "with --reports-nats: how long after a sale or release a report is published")
	faults := newFaultFlags()
	var functions repeated
	fs.Var(faults, "fault", "inject a fault, Action:key=value[,key=value] with keys latency, error, rate, qps, burst, cut\n(repeatable; e.g. BuySecretNo:qps=5 or BuySecretNo:cut=0.1)")
	fs.Var(&functions, "fc-function", "make FC's InvokeFunction run a function, NAME=URL of its custom runtime server\n(repeatable; one invocation at a time, 120 s, 2 retries, as s.yaml deploys xnum-buy-worker)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := []emulator.Option{emulator.WithFaults(faults.set)}
	if *token != "" {
		opts = append(opts, emulator.WithSTSToken(*id, *secret, *token))
	} else {
		opts = append(opts, emulator.WithKey(*id, *secret))
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
		opts = append(opts, emulator.WithLogger(slog.New(slog.NewJSONHandler(stderr, nil))))
	}
	if *reportsNATS != "" {
		if *reportsDelay < 0 {
			return fmt.Errorf("--reports-delay %v: must not be negative", *reportsDelay)
		}
		nc, err := queue.Connect(*reportsNATS, nats.Name("xnum-emulator"), nats.RetryOnFailedConnect(true))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		feed := reports.NewFeed(queue.NewPublisher(js, queue.WithExpectStream(queue.ReportsStreamName), queue.WithPublishRetry(8, time.Second)),
			*reportsDelay, reports.WithFeedLogger(slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))))
		defer feed.Close()
		opts = append(opts, emulator.WithDyplsOptions(dypls.WithReportHook(func(r dypls.Report) { feed.Add(r) })))
	}

	e, err := emulator.New(opts...)
	if err != nil {
		return err
	}
	defer e.Close()
	for _, spec := range functions {
		name, u, ok := strings.Cut(spec, "=")
		if !ok {
			return usagef("--fc-function %q: want NAME=URL", spec)
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return usagef("--fc-function %q: the URL must be http://host:port", spec)
		}
		if err := e.FC().Register(fc.Function{Name: name, URL: u, Concurrency: 1, Timeout: 120 * time.Second, Retries: 2}); err != nil {
			return err
		}
	}

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "xnum emulator: Dyplsapi 2017-05-25, VMS 2022-01-01 and FC %s on http://%s (AccessKeyId %s)\n", fc.APIVersion, l.Addr(), *id)
	for _, spec := range faults.specs {
		fmt.Fprintf(stdout, "  fault %s\n", spec)
	}
	if *reportsNATS != "" {
		fmt.Fprintf(stdout, "  number reports to %s on %s, %v after each sale and release\n", *reportsNATS, events.SubjectNumberReports, *reportsDelay)
	}
	for _, spec := range functions {
		fmt.Fprintf(stdout, "  fc function %s\n", spec)
	}
	return emulator.Serve(ctx, l, e)
}
