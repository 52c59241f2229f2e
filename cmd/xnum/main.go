// Command xnum is the local all-in-one runner and the operators' tool.
//
//	xnum dev        run everything locally: NATS JetStream, the emulator, every function
//	xnum emulator   serve the emulator of both clouds (and FC's InvokeFunction)
//	xnum orders     list, show and reconcile orders in the ledger
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `xnum runs the xnum functions locally and operates their orders.

Usage:
  xnum dev [--fc] [--http 127.0.0.1:8080] [--nats 127.0.0.1:4222] [--data DIR] [--reports-delay 1s]
  xnum emulator [--addr 127.0.0.1:9100] [--access-key-id ID] [--access-key-secret SECRET] [--fault SPEC]... [--fc-function NAME=URL]...
                [--reports-nats URL [--reports-delay 1s]]
  xnum orders list [--status S[,S]] [--json]
  xnum orders show ID [--json]
  xnum orders reconcile ID (--secret-no N | --reports FILE | --stored-reports | --nothing-bought | --release) [--by NAME]

Run "xnum COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "xnum:", err)
		}
		os.Exit(2)
	}
}

// run is main without the process: tests call it with their own context and
// writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "emulator":
		return runEmulator(ctx, args[1:], stdout, stderr)
	case "orders":
		return runOrders(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
