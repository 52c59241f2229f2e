package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/queue"
	"github.com/xnum-dev/xnum/internal/remain"
)

const setupUsage = `Usage:
  xnum setup [--nats URL] [--replicas N] [--dry-run]
  xnum setup --permissions

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
  --permissions  print the permissions of the functions' NATS user, as a
                 nats-server authorization block: no stream admin
What NATS cannot change in place (a push consumer, an ack policy, a persist
mode) is printed and nothing is changed: recreate those objects first.

--nats URL (default $NATS_URL; NATS_CREDS is read too) must reach a user
allowed to create and update streams and consumers.
`

func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNATSFlags("setup", setupUsage, stderr)
	replicas := f.Int("replicas", 0, "scale every object to `N` replicas (1, 3 or 5)")
	dryRun := f.Bool("dry-run", false, "print what would change, change nothing")
	perms := f.Bool("permissions", false, "print the functions' NATS permissions")
	if err := parseFlags(f.FlagSet, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usagef("unexpected arguments %q", f.Args())
	}
	if *perms {
		p, err := functionPermissions()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, renderPermissions(p))
		return err
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

// functionPermissions are the permissions of the functions' NATS user: the
// buy function's JetStream use (queue) and the remain and pools services.
func functionPermissions() (queue.Permissions, error) {
	p, err := queue.FunctionPermissions()
	if err != nil {
		return queue.Permissions{}, err
	}
	p.Subscribe = append(p.Subscribe, remain.Subject, pools.Subject, pools.NumbersSubject, "$SRV.>")
	return p, nil
}

// renderPermissions writes p as a nats-server permissions block.
func renderPermissions(p queue.Permissions) string {
	var b strings.Builder
	b.WriteString("# The xnum functions' NATS user (xnum setup --permissions). It cannot\n" +
		"# create, change or delete a stream, a bucket or xnum's durable consumers:\n" +
		"# run xnum setup as an operator first. allow_responses lets the services\n" +
		"# answer requests.\n")
	list := func(name string, allow, deny []string) {
		b.WriteString("  " + name + ": {\n")
		for _, l := range []struct {
			key      string
			subjects []string
		}{{"allow", allow}, {"deny", deny}} {
			if len(l.subjects) == 0 {
				continue
			}
			b.WriteString("    " + l.key + ": [\n")
			for _, s := range l.subjects {
				b.WriteString("      " + strconv.Quote(s) + "\n")
			}
			b.WriteString("    ]\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("permissions: {\n")
	list("publish", p.Publish, p.PublishDeny)
	list("subscribe", p.Subscribe, nil)
	b.WriteString("  allow_responses: true\n}\n")
	return b.String()
}
