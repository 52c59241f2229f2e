package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/queue"
)

const setupUsage = `Usage:
  xnum setup [--nats URL] [--replicas N] [--dry-run]

setup creates xnum's JetStream objects that are missing (the XNUM stream,
the xnum-buy consumer, the max-deliveries advisories, the XNUM_ORDERS ledger
and the XNUM_LIMITS bucket) and updates existing ones where they lack what
xnum's code needs (a subject, a filter, a limited max deliver), printing
each change. It changes nothing else of an existing object: its limits,
ages and ack waits stay the operator's.
  --replicas N   1, 3 or 5: scale every object to N replicas, and create
                 missing ones with N (default $XNUM_NATS_REPLICAS; without
                 either, existing objects keep theirs and new ones get 1)
  --dry-run      print what would change, change nothing
What NATS cannot change in place (a push consumer, an ack policy, a persist
mode) is printed and nothing is changed: recreate those objects first.

--nats URL (default $NATS_URL; NATS_CREDS, NATS_CA ... are read too) must
reach a user allowed to create and update streams and consumers (the
README's xnum-admin); the functions' users may not.
`

func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNATSFlags("setup", setupUsage, stderr)
	replicas := f.Int("replicas", 0, "scale every object to `N` replicas (1, 3 or 5)")
	dryRun := f.Bool("dry-run", false, "print what would change, change nothing")
	if err := parseFlags(f.FlagSet, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usagef("unexpected arguments %q", f.Args())
	}
	var opts []queue.Option
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "replicas" })
	if set {
		if r := *replicas; r != 1 && r != 3 && r != 5 {
			return usagef("--replicas %d: want 1, 3 or 5", r)
		}
		opts = append(opts, queue.WithReplicas(*replicas))
	} else if v, ok := f.lookup(config.NATSReplicas); ok && strings.TrimSpace(v) != "" {
		n, err := config.LoadNATS(f.lookup)
		if err != nil {
			return err
		}
		opts = append(opts, queue.WithReplicas(n.Replicas))
	}
	nc, js, err := f.connect("xnum-setup")
	if err != nil {
		return err
	}
	defer nc.Close()
	plan, err := queue.PlanSetup(ctx, js, opts...)
	if err != nil {
		return err
	}
	for _, p := range plan.Problems {
		fmt.Fprintln(stdout, "cannot fix:", p)
	}
	if len(plan.Problems) > 0 {
		return fmt.Errorf("%d objects need an operator first; nothing changed", len(plan.Problems))
	}
	if len(plan.Changes) == 0 {
		fmt.Fprintln(stdout, "nothing to change: every object is there with what xnum needs")
		return nil
	}
	if *dryRun {
		for _, c := range plan.Changes {
			fmt.Fprintln(stdout, "would", c)
		}
		fmt.Fprintf(stdout, "dry run: %d changes, none made\n", len(plan.Changes))
		return nil
	}
	n := 0
	err = plan.Apply(ctx, func(c queue.Change) { n++; fmt.Fprintln(stdout, c) })
	fmt.Fprintf(stdout, "%d of %d changes made\n", n, len(plan.Changes))
	return err
}
