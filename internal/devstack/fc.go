package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/wakeup"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
)

// WorkerFunction is the buy worker's function name in the FC shape, as
// s.yaml deploys it.
const WorkerFunction = "xnum-buy-worker"

// fcWorker is the buy worker as FC runs it: a function of its own on a
// loopback port, registered with the emulator's FC, and the intake's waker
// of it.
type fcWorker struct {
	fn    *buy.Function
	ln    net.Listener
	url   string
	log   *slog.Logger
	waker *wakeup.Waker
}

// startWorker builds the worker function and registers it with emu's FC as
// s.yaml configures it (one invocation at a time, 120 s, two retries).
func startWorker(ctx context.Context, js jetstream.JetStream, p buy.Provider, emu *emulator.Emulator, emuURL string, qps float64,
	reportsWait time.Duration, logger *slog.Logger, m *metrics.Metrics) (*fcWorker, error) {
	log := logger.With("fcFunction", WorkerFunction)
	fn, err := buy.New(ctx, js, p, buy.Config{Role: buy.RoleWorker, QPS: qps, EventTimeout: 110 * time.Second, ReportsWait: reportsWait, Logger: log,
		Reconcile: emulatorSlack, Metrics: m})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("buy worker: %w", err)
	}
	w := &fcWorker{fn: fn, ln: ln, url: "http://" + ln.Addr().String(), log: log}
	err = emu.FC().Register(fc.Function{Name: WorkerFunction, URL: w.url, Concurrency: 1, Timeout: 120 * time.Second, Retries: 2, MemoryMB: 256})
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The intake signs its wake-ups with the key FC would give its role;
	// the emulator passes the same key to the worker.
	client, err := wakeup.NewClient(wakeup.Config{Endpoint: emuURL, Credentials: provider.Credentials{
		AccessKeyID: emulator.DefaultAccessKeyID, AccessKeySecret: emulator.DefaultAccessKeySecret}})
	if err != nil {
		ln.Close()
		return nil, err
	}
	w.waker = wakeup.NewWaker(client, WorkerFunction, wakeup.WithLogger(logger))
	return w, nil
}

// serve runs the worker function under FC's custom runtime contract until
// ctx ends, writing its invocation markers to markers (nil: nowhere).
func (w *fcWorker) serve(ctx context.Context, nc *nats.Conn, markers io.Writer) error {
	if markers == nil {
		markers = io.Discard
	}
	return function.Serve(ctx, w.fn.Function,
		function.WithListener(w.ln),
		function.WithLogger(w.log),
		function.WithNATS(nc),
		function.WithLookup(w.fcEnv),
		function.WithStdout(markers),
	)
}

// fcEnv is the environment FC gives the worker's instances: with FC's
// variables, its control paths and headers are honoured, as the emulator's
// FC invokes it. (Anything on this machine can reach its loopback port: it
// is xnum dev's.)
func (w *fcWorker) fcEnv(name string) (string, bool) {
	v, ok := map[string]string{
		config.FCFunctionName: WorkerFunction,
		config.FCRegion:       fc.DefaultRegion,
		config.FCAccountID:    fc.DefaultAccountID,
	}[name]
	return v, ok
}
