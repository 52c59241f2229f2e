package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/reconcile"
	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// startCommand runs xnum with args until the test ends and returns the
// first line of its output that matches re, with its submatches.
func startCommand(t *testing.T, re *regexp.Regexp, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("xnum %v returned %v after interrupt", args, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("xnum %v did not stop within 10s of interrupt", args)
		}
	})
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, pr)
			return m
		}
	}
	t.Fatalf("xnum %v ended without printing %v", args, re)
	return nil
}

func TestEmulatorCommand(t *testing.T) {
	invoked := make(chan string, 1)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		invoked <- r.URL.Path + " " + r.Header.Get("x-fc-access-key-id") + " " + string(b)
		w.Header().Set("x-fc-status", "200")
	}))
	t.Cleanup(fn.Close)
	m := startCommand(t, regexp.MustCompile(`on (http://\S+)`),
		"emulator", "--addr", "127.0.0.1:0", "--access-key-id", "ci-key", "--access-key-secret", "ci-secret",
		"--fault", "NumberPoolList:error=FlowLimitExceeded", "--fc-function", "ci-worker="+fn.URL)
	url := m[1]
	ctx := context.Background()

	a, err := aliyun.New(aliyun.Config{AccessKeyID: "ci-key", AccessKeySecret: "ci-secret", Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Remain(ctx, provider.RemainQuery{City: provider.CityNationwide, SpecID: provider.SpecVirtual})
	if err != nil || r.Amount == 0 {
		t.Fatalf("remain through xnum emulator: %+v, %v", r, err)
	}

	v, err := volcengine.New(volcengine.Config{AccessKeyID: "ci-key", SecretAccessKey: "ci-secret", Endpoint: url, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ListPools(ctx, provider.PoolQuery{}); !errors.Is(err, provider.ErrThrottled) {
		t.Fatalf("the --fault flag was not applied: %v", err)
	}

	f, err := wakeup.NewClient(wakeup.Config{Endpoint: url, Credentials: provider.Credentials{AccessKeyID: "ci-key", AccessKeySecret: "ci-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.InvokeAsync(ctx, "ci-worker", []byte("drain")); err != nil {
		t.Fatalf("InvokeFunction through xnum emulator: %v", err)
	}
	select {
	case got := <-invoked:
		if got != "/invoke ci-key drain" {
			t.Fatalf("the --fc-function got %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the --fc-function was not invoked")
	}
}

// Run alone with --reports-nats, the emulator publishes a report of each
// number it sells to the reports stream, as the cloud's reach it by MNS.
func TestEmulatorCommandPublishesReports(t *testing.T) {
	ns := embednats.RunTest(t)
	nc, err := queue.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	q, err := queue.Setup(context.Background(), js) // what the buy function creates
	if err != nil {
		t.Fatal(err)
	}
	m := startCommand(t, regexp.MustCompile(`on (http://\S+)`), "emulator", "--addr", "127.0.0.1:0",
		"--reports-nats", ns.ClientURL(), "--reports-delay", "0s")
	a, err := aliyun.New(aliyun.Config{AccessKeyID: emulator.DefaultAccessKeyID, AccessKeySecret: emulator.DefaultAccessKeySecret, Endpoint: m[1]})
	if err != nil {
		t.Fatal(err)
	}
	bought, err := a.Buy(context.Background(), provider.BuyRequest{PoolKey: "FC100000000000001", City: "杭州", SpecID: provider.SpecCarrier})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the report of "+bought.SecretNo, func() bool {
		reps, _, err := reports.Since(context.Background(), q.Reports, time.Time{})
		return err == nil && len(reps) == 1 && reps[0].SecretNo == bought.SecretNo && reps[0].Status == reconcile.ReportCreated &&
			reps[0].PartnerKey == "FC100000000000001"
	})
}

func TestEmulatorCommandRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"emulator", "--reports-nats", "nats://127.0.0.1:1", "--reports-delay", "-1s"},
		{"emulator", "--fault", "BuySecretNo"},
		{"emulator", "--fault", "BuySecretNo:cut=2"},
		{"emulator", "--addr", "not-an-address"},
		{"emulator", "--fc-function", "worker"},
		{"emulator", "--fc-function", "worker=127.0.0.1:9000"},
		{"emulator", "--no-such-flag"},
		{"no-such-command"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("xnum %v: no error", args)
		}
	}
}
