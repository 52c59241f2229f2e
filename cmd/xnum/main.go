// Command xnum is the local all-in-one runner and the operators' tool.
//
//	xnum dev        run everything locally: NATS JetStream, the emulator, every function
//	xnum emulator   serve the emulator of both clouds (and FC's InvokeFunction)
//	xnum orders     list, count, show and reconcile orders in the ledger
//	xnum setup      create or update the JetStream objects, as an operator
//
// It exits 0 when the command did what it was asked (or printed the help
// -h asked for), 1 when it failed, and 2 when the command line (or the
// configuration it reads) cannot be run as given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
)

const usage = `xnum runs the xnum functions locally and operates their orders.

Usage:
  xnum dev [--fc] [--http 127.0.0.1:8080] [--nats 127.0.0.1:4222] [--data DIR] [--reports-delay 1s]
  xnum emulator [--addr 127.0.0.1:9100] [--access-key-id ID] [--access-key-secret SECRET] [--fault SPEC]... [--fc-function NAME=URL]...
                [--reports-nats URL [--reports-delay 1s]]
  xnum orders list [--status S[,S]] [--since DURATION|TIME] [--limit N] [--json]
  xnum orders stats [--json]
  xnum orders show ID [--json]
  xnum orders reconcile ID (--secret-no N | --reports FILE | --stored-reports | --nothing-bought | --release) [--by NAME]
  xnum setup [--nats URL] [--replicas N] [--dry-run]

Run "xnum COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "xnum:", err)
	}
	os.Exit(exitCode(err))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitCode is the exit status of a command that returned err.
func exitCode(err error) int {
	var (
		ue *usageError
		ce *envvar.Error
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	return exitFailure
}

// usageError is a command line that cannot be run as given (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef is a usageError saying what is wrong with the command line.
func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// parseFlags parses args into fs: -h (which prints the flags) is
// flag.ErrHelp, any other error the command line's.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return &usageError{err}
	}
	return err
}

// run is main without the process: tests call it with their own context and
// writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "command", usage, []command{
		{"dev", sdkGuarded(runDev)},
		{"emulator", runEmulator},
		{"orders", sdkGuarded(runOrders)},
		{"setup", runSetup},
	}, args, stdout, stderr)
}

// sdkGuarded runs run unless DEBUG would make the Alibaba SDK print its
// signed requests: xnum dev and xnum orders call Dyplsapi through it.
func sdkGuarded(run runFunc) runFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if err := config.CheckSDKDebug(os.LookupEnv); err != nil {
			return err
		}
		return run(ctx, args, stdout, stderr)
	}
}

// command is one (sub)command and what runs it with its arguments.
type command struct {
	name string
	run  runFunc
}

// runFunc runs a (sub)command with its arguments.
type runFunc = func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// dispatch runs the command of cmds args[0] names, or prints usage: to
// stdout when asked for help, else to stderr with a usage error that names
// the commands (what says what they are: "command", "orders command").
func dispatch(ctx context.Context, what, usage string, cmds []command, args []string, stdout, stderr io.Writer) error {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		if len(args) > 0 && args[0] == c.name {
			return c.run(ctx, args[1:], stdout, stderr)
		}
		names[i] = c.name
	}
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	fmt.Fprint(stderr, usage)
	if len(args) == 0 {
		article := "a"
		if strings.ContainsRune("aeiou", rune(what[0])) {
			article = "an"
		}
		return usagef("give %s %s: %s or %s", article, what, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
	}
	return usagef("unknown %s %q", what, args[0])
}
