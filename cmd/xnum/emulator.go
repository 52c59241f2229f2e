package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// faultFlags collects repeated --fault flags.
type faultFlags []string

func (f *faultFlags) String() string     { return strings.Join(*f, " ") }
func (f *faultFlags) Set(s string) error { *f = append(*f, s); return nil }

func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "address to serve both clouds on")
	id := fs.String("access-key-id", emulator.DefaultAccessKeyID, "the AccessKeyId both clouds accept")
	secret := fs.String("access-key-secret", emulator.DefaultAccessKeySecret, "its secret")
	token := fs.String("security-token", "", "make the key temporary (STS): requests must carry this token")
	verbose := fs.Bool("v", false, "log every request")
	var faults faultFlags
	fs.Var(&faults, "fault", "inject a fault, Action:key=value[,key=value] with keys latency, error, rate, qps, burst, cut\n(repeatable; e.g. BuySecretNo:qps=5 or BuySecretNo:cut=0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := fault.NewSet(1)
	for _, spec := range faults {
		action, f, err := fault.Parse(spec)
		if err != nil {
			return err
		}
		set.Set(action, f)
	}
	opts := []emulator.Option{emulator.WithFaults(set)}
	if *token != "" {
		opts = append(opts, emulator.WithSTSToken(*id, *secret, *token))
	} else {
		opts = append(opts, emulator.WithKey(*id, *secret))
	}
	if *verbose {
		opts = append(opts, emulator.WithLogger(slog.New(slog.NewJSONHandler(stderr, nil))))
	}

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "xnum emulator: Dyplsapi 2017-05-25 and VMS 2022-01-01 on http://%s (AccessKeyId %s)\n", l.Addr(), *id)
	for _, spec := range faults {
		fmt.Fprintf(stdout, "  fault %s\n", spec)
	}
	return emulator.Serve(ctx, l, emulator.New(opts...))
}
